package models

import "strings"

// RedactSecrets returns s with every run of text shaped like an API key's
// secret ("sk-tt-" and base62 characters) cut to the form the console
// shows a key in, "sk-tt-abcd…wxyz": the first and last four characters
// of its random part. A run of eight characters or fewer is left as it is:
// it shows no more than that form does, and so the form itself, in a
// message that names a key, comes out unchanged. Everything the product
// logs or stores that a caller could have written (a path, an error
// message or body) goes through it, so a secret pasted in the wrong
// place is never kept whole.
func RedactSecrets(s string) string {
	i := strings.Index(s, KeySecretPrefix)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i >= 0 {
		i += len(KeySecretPrefix)
		b.WriteString(s[:i])
		s = s[i:]
		n := 0
		// A run ends where the next secret starts: "sk" is base62 too.
		for n < len(s) && isBase62(s[n]) && !strings.HasPrefix(s[n:], KeySecretPrefix) {
			n++
		}
		if n > 8 {
			b.WriteString(s[:4])
			b.WriteString("…")
			b.WriteString(s[n-4 : n])
			s = s[n:]
		}
		i = strings.Index(s, KeySecretPrefix)
	}
	b.WriteString(s)
	return b.String()
}

func isBase62(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
