// Package smtptest is a real SMTP server on loopback for tests: it keeps
// every message it accepts, parsed into its text and HTML parts. It can
// offer STARTTLS or speak TLS from the start (with a certificate made for
// the test), ask for a password, be down, and come up later on the same
// address.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options choose how the server behaves.
type Options struct {
	// StartTLS offers STARTTLS; ImplicitTLS speaks TLS from the first
	// byte (smtps://). Either way the certificate is the server's own,
	// trusted through RootCAs.
	StartTLS    bool
	ImplicitTLS bool
	// Username and Password, when set, are required (AUTH PLAIN, offered
	// only over TLS).
	Username, Password string
	// Delay holds every message this long before accepting it: a slow
	// mail server.
	Delay time.Duration
}

// Message is one mail the server accepted.
type Message struct {
	From    string
	To      []string
	Subject string
	Header  mail.Header
	Text    string // the text/plain part
	HTML    string // the text/html part
	TLS     bool   // it came over TLS
	User    string // the user that authenticated, if any
	Raw     []byte
}

// Server is the SMTP server of one test.
type Server struct {
	Addr string // 127.0.0.1:port
	opts Options
	cert tls.Certificate
	pool *x509.CertPool

	mu      sync.Mutex
	msgs    []Message
	arrived chan struct{} // closed and replaced at each message
	srv     *smtp.Server
	parked  net.Listener // while down: holds the address, closing each connection at once
}

// Start starts a server on a free port of 127.0.0.1, stopped when the
// test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := Reserve(t, opts)
	s.Up(t)
	return s
}

// Reserve picks a free address for a server but serves no mail on it yet:
// until Up, each connection is closed at once, so a mail fails as fast as
// on a refused connection. The address stays held meanwhile, so no other
// test's server takes the port before Up.
func Reserve(t testing.TB, opts Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), opts: opts, arrived: make(chan struct{})}
	if opts.StartTLS || opts.ImplicitTLS {
		s.cert, s.pool = certificate(t)
	}
	s.park(ln)
	t.Cleanup(func() {
		s.Down()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.parked != nil {
			s.parked.Close()
			s.parked = nil
		}
	})
	return s
}

// park holds the address with ln, closing each connection at once.
func (s *Server) park(ln net.Listener) {
	s.mu.Lock()
	s.parked = ln
	s.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// Up starts listening at the server's address.
func (s *Server) Up(t testing.TB) {
	t.Helper()
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0)
	s.mu.Lock()
	if s.parked != nil {
		s.parked.Close()
		s.parked = nil
	}
	s.mu.Unlock()
	var ln net.Listener
	var err error
	for range 50 { // the port was just given up; allow for a slow release
		if ln, err = net.Listen("tcp", s.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("SMTP server: listen on %s: %v", s.Addr, err)
	}
	if s.opts.StartTLS || s.opts.ImplicitTLS {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: tls.VersionTLS12}
	}
	if s.opts.ImplicitTLS {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln)
}

// Down stops the server: until Up, each connection is closed at once.
func (s *Server) Down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Close()
	for range 50 { // as in Up
		if ln, err := net.Listen("tcp", s.Addr); err == nil {
			s.park(ln)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is the SMTP_URL that reaches the server, with its user and password.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.Addr}
	if s.opts.ImplicitTLS {
		u.Scheme = "smtps"
	}
	if s.opts.Username != "" {
		u.User = url.UserPassword(s.opts.Username, s.opts.Password)
	}
	return u.String()
}

// RootCAs trusts the server's certificate.
func (s *Server) RootCAs() *x509.CertPool { return s.pool }

// Messages returns what the server has accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// WaitFor waits up to timeout for n messages to an address and returns
// them; the test fails when fewer arrive.
func (s *Server) WaitFor(t testing.TB, to string, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		var got []Message
		for _, m := range s.msgs {
			for _, r := range m.To {
				if strings.EqualFold(r, to) {
					got = append(got, m)
				}
			}
		}
		arrived := s.arrived
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-arrived:
		case <-deadline:
			t.Fatalf("SMTP server: %d mail(s) to %s within %v, want %d", len(got), to, timeout, n)
			return nil
		}
	}
}

func (s *Server) keep(m Message) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
	s.mu.Unlock()
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: s, c: c}, nil
}

type session struct {
	s    *Server
	c    *smtp.Conn
	user string
	from string
	to   []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != ss.s.opts.Username || password != ss.s.opts.Password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Invalid credentials"}
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.Username != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if ss.s.opts.Delay > 0 {
		time.Sleep(ss.s.opts.Delay)
	}
	m, err := parse(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: err.Error()}
	}
	m.From, m.To, m.User = ss.from, ss.to, ss.user
	_, m.TLS = ss.c.TLSConnectionState()
	ss.s.keep(m)
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// parse reads a message's headers and its text and HTML parts.
func parse(raw []byte) (Message, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, err
	}
	m := Message{Header: msg.Header, Raw: raw}
	dec := new(mime.WordDecoder)
	if m.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return Message{}, err
	}
	err = m.readPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	return m, err
}

func (m *Message) readPart(contentType, encoding string, body io.Reader) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %w", contentType, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart() // decodes quoted-printable itself
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := m.readPart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	if strings.EqualFold(encoding, "base64") {
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	switch mt {
	case "text/plain":
		m.Text = string(b)
	case "text/html":
		m.HTML = string(b)
	}
	return nil
}

// certificate makes a self-signed certificate for 127.0.0.1 and
// localhost, and a pool that trusts it.
func certificate(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
