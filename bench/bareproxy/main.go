// Command bareproxy is the baseline of the gateway benchmark: a bare
// net/http/httputil.ReverseProxy to the upstream, with nothing else — no
// keys, no billing, no request log. It runs as its own process, like the
// gateway, so both are measured under the same conditions.
//
//	bareproxy --addr 127.0.0.1:0 --upstream http://127.0.0.1:9000
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	up := flag.String("upstream", "", "upstream base URL, such as http://127.0.0.1:9000")
	flag.Parse()
	target, err := url.Parse(*up)
	if err != nil || target.Host == "" {
		log.Fatalf("bareproxy: --upstream must be an http URL, not %q", *up)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	// The same connection pool settings as the gateway's upstream client
	// (upstream.NewHTTP), so the baseline differs only by what the gateway
	// does per call.
	proxy.Transport = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// The benchmark reads the address from this line.
	fmt.Fprintf(os.Stderr, "bare proxy listening on %s\n", ln.Addr())
	// The request body is read whole before proxying, as the gateway reads
	// it to parse the call. Streaming it through instead races: the
	// upstream answers as soon as it has decoded the JSON, the server then
	// ends the inbound body, and the Transport — still waiting for that
	// body's EOF — closes the upstream connection mid-response ("use of
	// closed network connection", the client sees a truncated stream).
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		proxy.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	log.Fatal(srv.Serve(ln))
}
