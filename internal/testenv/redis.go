package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SharedRedisURL returns the Redis that instances of the product share in
// a scale-out test: REDIS_URL, or else TT_TEST_REDIS_URL, which CI sets for
// its SQLite pass. Without either the test fails in CI and is skipped,
// with a message, on a developer machine.
func SharedRedisURL(t testing.TB) string {
	t.Helper()
	return serverURL(t, "REDIS_URL", "TT_TEST_REDIS_URL", "the scale-out tests",
		"set REDIS_URL (e.g. redis-server --port 6390 --save '' --daemonize yes; REDIS_URL=redis://127.0.0.1:6390/0)")
}

// ScaleOut checks that a test of several instances has what it runs on,
// PostgreSQL (PostgresURL: a SQLite file is for one instance) and a shared
// Redis, and returns that Redis's URL. Its instances are PostgresInstances.
func ScaleOut(t testing.TB) string {
	t.Helper()
	PostgresURL(t)
	return SharedRedisURL(t)
}

// Redis is a redis-server of one test's own on a free loopback port, which
// the test may stop and start again (on the same port) to act out an outage.
type Redis struct {
	URL  string
	port int
	dir  string
	path string
	cmd  *exec.Cmd
}

// StartRedis starts a redis-server for one test. Without the binary the
// test fails in CI and is skipped, with a message, on a developer machine.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if InCI() {
			t.Fatal("redis-server is required in CI: apt-get install redis-server")
		}
		t.Skip("skipping: redis-server not found (apt-get install redis-server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &Redis{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), port: port, dir: t.TempDir(), path: path}
	r.Start(t)
	t.Cleanup(func() { r.Stop(t) })
	return r
}

// Start runs the server (again) and waits until it answers PING.
func (r *Redis) Start(t testing.TB) {
	t.Helper()
	if r.cmd != nil {
		return
	}
	cmd := exec.Command(r.path, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	r.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for !r.pings() {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d did not answer PING", r.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the server; its data is gone (it never saves).
func (r *Redis) Stop(t testing.TB) {
	t.Helper()
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}

func (r *Redis) pings() bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.port), 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}
