package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Client sends calls to the upstream model server.
type Client struct {
	base string
	http *http.Client
	// HeaderTimeout bounds the wait for the upstream's response headers.
	HeaderTimeout time.Duration
}

// NewHTTP returns a client of the OpenAI-compatible server at baseURL
// (for example http://10.0.0.5:9000), with pooled keep-alive connections.
func NewHTTP(baseURL string, headerTimeout time.Duration) *Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: headerTimeout,
		ForceAttemptHTTP2:     false,
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: &http.Client{Transport: tr}, HeaderTimeout: headerTimeout}
}

// NewInProcess returns a client of h served in this process, through the
// same HTTP code path as a remote upstream but without a socket.
func NewInProcess(h http.Handler, headerTimeout time.Duration) *Client {
	return &Client{base: "http://upstream.local", http: &http.Client{Transport: handlerTransport{h}}, HeaderTimeout: headerTimeout}
}

// Post sends a JSON body to path (such as /v1/chat/completions). The
// response body streams; the caller closes it. ctx cancels the call,
// including a stream in progress.
func (c *Client) Post(ctx context.Context, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.http.Do(req)
}

// Get fetches path (such as /v1/tasks/{id}). The caller closes the body.
func (c *Client) Get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	return c.http.Do(req)
}

// handlerTransport runs an http.Handler for each request, streaming its
// response through a pipe as it is written.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	pr, pw := io.Pipe()
	w := &pipeWriter{pw: pw, header: http.Header{}, ready: make(chan struct{}), req: req}
	go func() {
		defer func() {
			if r := recover(); r != nil {
				if r != http.ErrAbortHandler {
					pw.CloseWithError(errors.New("upstream handler panicked"))
				} else {
					pw.CloseWithError(io.ErrUnexpectedEOF)
				}
				w.start(http.StatusInternalServerError)
				return
			}
			w.start(http.StatusOK)
			pw.Close()
		}()
		t.h.ServeHTTP(w, req)
	}()
	select {
	case <-w.ready:
	case <-req.Context().Done():
		pw.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	return &http.Response{
		Status: http.StatusText(w.status), StatusCode: w.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: &cancelReader{pr: pr}, ContentLength: -1, Request: req,
	}, nil
}

type pipeWriter struct {
	pw     *io.PipeWriter
	header http.Header
	status int
	once   sync.Once
	ready  chan struct{}
	req    *http.Request
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) start(status int) {
	w.once.Do(func() {
		w.status = status
		w.header = w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeWriter) WriteHeader(status int) { w.start(status) }

func (w *pipeWriter) Write(b []byte) (int, error) {
	w.start(http.StatusOK)
	return w.pw.Write(b)
}

func (w *pipeWriter) Flush() {}

// cancelReader closes the pipe when the caller closes the body, which ends
// the handler's writes (and with them the simulated call).
type cancelReader struct{ pr *io.PipeReader }

func (r *cancelReader) Read(p []byte) (int, error) { return r.pr.Read(p) }
func (r *cancelReader) Close() error {
	return r.pr.CloseWithError(errors.New("body closed"))
}
