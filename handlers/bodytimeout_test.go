package handlers_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"ttconsole/handlers"
	"ttconsole/internal/testenv"
)

// Clients that send their headers and then a byte now and then are
// answered 400 and let go once the body timeout has passed, on the
// gateway and the console alike; a long stream is not cut by it.
func TestSlowRequestBodiesAreCutOff(t *testing.T) {
	noLeaks(t)
	p := newPlatform(t, testenv.Options{Adjust: func(a *handlers.App) { a.BodyTimeout = 700 * time.Millisecond }})
	addr := strings.TrimPrefix(p.srv.URL, "http://")
	const conns = 20
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	start := time.Now()
	for i := 0; i < conns; i++ {
		path := "/v1/chat/completions"
		if i%2 == 1 {
			path = "/login"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- drip(addr, path, p.secret)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("slow bodies were let go after %s, want about the 700ms body timeout", took)
	}

	// A stream that outlasts the body timeout runs to its end.
	res := p.openStream(t.Context(), streamBody(100, map[string]string{"sim_output_tokens": "30", "sim_interval_ms": "50"}))
	evs := events(res, -1)
	res.Body.Close()
	if len(evs) == 0 || evs[len(evs)-1] != "[DONE]" {
		t.Fatalf("stream after the body timeout: %d events, last %q", len(evs), evs[len(evs)-1])
	}
}

// drip sends a request whose 1000-byte body comes one byte every 100ms
// and reports an error unless the server answers 400 or closes the
// connection within 4 seconds.
func drip(addr, path, secret string) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n", path, secret)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if _, err := conn.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(4 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return fmt.Errorf("%s: still open after 4s of a slow body", path)
		}
		return nil // closed: let go
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest && res.StatusCode != http.StatusForbidden {
		return fmt.Errorf("%s: answered %d %s, want 400", path, res.StatusCode, b)
	}
	return nil
}
