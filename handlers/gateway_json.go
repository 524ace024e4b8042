package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"reflect"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// The gateway checks and prices a body, then forwards its bytes, so it must
// read them as an OpenAI-compatible upstream will: keys case-sensitive,
// each once. encoding/json matches keys case-insensitively and keeps the
// last of duplicates, so "max_tokens":2000,"MAX_TOKENS":1 would be held for
// one token and run for 2000. strictJSON refuses every body that the two
// readings could understand differently, before it is decoded.

// jsonShape is what the gateway reads of a JSON value: the members of an
// object decoded into a struct (fields), or the elements of an array or
// the values of a map (elem). nil: the gateway reads nothing inside.
type jsonShape struct {
	fields map[string]*jsonShape
	elem   *jsonShape
}

// shapeOf is the shape the gateway reads when it decodes into t.
func shapeOf(t reflect.Type) *jsonShape {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		s := &jsonShape{fields: map[string]*jsonShape{}}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() && !f.Anonymous {
				continue
			}
			if f.Anonymous && name == "" { // its fields are read as this struct's
				if inner := shapeOf(f.Type); inner != nil {
					maps.Copy(s.fields, inner.fields)
				}
				continue
			}
			if name == "" {
				name = f.Name
			}
			s.fields[name] = shapeOf(f.Type)
		}
		return s
	case reflect.Slice, reflect.Array, reflect.Map:
		if t.Elem().Kind() == reflect.Uint8 { // raw JSON or bytes: read later, or not at all
			return nil
		}
		if elem := shapeOf(t.Elem()); elem != nil {
			return &jsonShape{elem: elem}
		}
		return &jsonShape{}
	}
	return nil
}

// strictJSON walks body as the gateway will decode it into shape. It
// refuses (nameErr) a key given twice in any object, and a key that differs
// only in case from one the gateway reads. Any other error of the body is
// returned as syntaxErr, for the decoder to describe if it can.
func strictJSON(body []byte, shape *jsonShape) (nameErr *APIError, syntaxErr error) {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	nameErr, syntaxErr = walkJSON(dec, shape)
	if nameErr == nil && syntaxErr == nil {
		if _, err := dec.ReadToken(); err != io.EOF {
			syntaxErr = errors.New("data after the JSON value")
		}
	}
	var se *jsontext.SyntacticError
	if errors.As(syntaxErr, &se) && errors.Is(se.Err, jsontext.ErrDuplicateName) {
		return invalid("The key %q appears more than once in %s: send each key once.",
			se.JSONPointer.LastToken(), objectAt(se.JSONPointer.Parent())), nil
	}
	return nameErr, syntaxErr
}

func walkJSON(dec *jsontext.Decoder, s *jsonShape) (*APIError, error) {
	if s == nil {
		return nil, dec.SkipValue() // still refuses duplicate keys inside
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case '{':
		for dec.PeekKind() != '}' {
			name, err := dec.ReadToken()
			if err != nil {
				return nil, err
			}
			key := name.String()
			child := s.elem
			if s.fields != nil {
				var known bool
				child, known = s.fields[key]
				if !known {
					if field := s.caseVariant(key); field != "" {
						at := dec.StackPointer().Parent()
						return invalid("The key %q in %s differs only in case from %q: keys are case-sensitive, so send %q exactly once.",
							key, objectAt(at), field, field), nil
					}
				}
			}
			if apiErr, err := walkJSON(dec, child); apiErr != nil || err != nil {
				return apiErr, err
			}
		}
	case '[':
		for dec.PeekKind() != ']' {
			if apiErr, err := walkJSON(dec, s.elem); apiErr != nil || err != nil {
				return apiErr, err
			}
		}
	default:
		return nil, nil
	}
	_, err = dec.ReadToken() // the closing '}' or ']'
	return nil, err
}

// caseVariant returns the field that key would match in encoding/json
// (which folds case, Unicode's simple folding included) but not exactly.
func (s *jsonShape) caseVariant(key string) string {
	for field := range s.fields {
		if strings.EqualFold(field, key) {
			return field
		}
	}
	return ""
}

// objectAt names the object at a JSON pointer for a message.
func objectAt(p jsontext.Pointer) string {
	if p == "" {
		return "the request body"
	}
	return "the object at " + string(p)
}

// withField returns the JSON object body with its top-level member name
// set to value: replaced where it is, or added first. Every other byte is
// the client's, so the upstream reads exactly what the gateway checked.
func withField(body []byte, name string, value any) []byte {
	v, err := json.Marshal(value)
	if err != nil {
		return body
	}
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return body
	}
	open := int(dec.InputOffset())
	members := 0
	for dec.PeekKind() == '"' {
		key, err := dec.ReadToken()
		if err != nil {
			return body
		}
		isName := key.String() == name
		val, err := dec.ReadValue()
		if err != nil {
			return body
		}
		if isName {
			end := int(dec.InputOffset())
			start := end - len(val)
			return bytes.Join([][]byte{body[:start], v, body[end:]}, nil)
		}
		members++
	}
	field, _ := json.Marshal(name)
	field = append(append(field, ':'), v...)
	if members > 0 {
		field = append(field, ',')
	}
	return bytes.Join([][]byte{body[:open], field, body[open:]}, nil)
}
