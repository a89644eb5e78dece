// Package budgetiotest holds test helpers for the receivers' memory budget:
// slow clients that claim a large Content-Length and send little of it.
package budgetiotest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/flowscope/flowscope/ingest/internal/budgetio"
	"github.com/flowscope/flowscope/membudget"
)

// Answer is a response one slow client got before it had sent its body.
type Answer struct {
	Status     int
	RetryAfter string
}

// SlowClients are HTTP/1.1 connections that each sent a request header
// claiming a Content-Length and then only part of the body.
type SlowClients struct {
	t     testing.TB
	conns []net.Conn
	wg    sync.WaitGroup

	mu      sync.Mutex
	answers []Answer
}

// StartSlowClients opens n connections to addr (a loopback host:port) and
// sends on each a POST of path with Content-Type contentType declaring
// claim bytes, followed by the first bytes of the body, send. Every
// connection then waits, reading whatever the server answers early. Close
// them with Close (also run at the end of the test).
func StartSlowClients(t testing.TB, addr, path, contentType string, n int, claim int64, send []byte) *SlowClients {
	t.Helper()
	s := &SlowClients{t: t}
	t.Cleanup(s.Close)
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", path, addr, contentType, claim)
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		s.conns = append(s.conns, c)
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(append([]byte(head), send...)); err != nil {
			t.Fatalf("send request head: %v", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return // closed by Close, or by the server without an answer
			}
			resp.Body.Close()
			s.mu.Lock()
			s.answers = append(s.answers, Answer{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")})
			s.mu.Unlock()
		}()
	}
	return s
}

// Send writes more body bytes on connection i.
func (s *SlowClients) Send(i int, b []byte) {
	s.t.Helper()
	if _, err := s.conns[i].Write(b); err != nil {
		s.t.Fatalf("send on connection %d: %v", i, err)
	}
}

// Answers returns the answers received so far.
func (s *SlowClients) Answers() []Answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Answer(nil), s.answers...)
}

// Close closes every connection and waits for their readers. It is safe
// to call twice.
func (s *SlowClients) Close() {
	for _, c := range s.conns {
		c.Close()
	}
	s.wg.Wait()
}

// WaitFor polls cond every 10 ms until it holds, failing the test with
// what() after timeout.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CheckSlowClients runs the slow-client scenario against a receiver
// serving path at addr and reserving from b, which must have at least
// 200×64 KiB + 256 KiB free: 200 connections claim 16 MiB each and send
// 1 KiB. Each must hold only the first 64 KiB step, never its claimed
// 16 MiB; one that then sends 200 KiB more holds 256 KiB; when all have
// gone the budget holds what it held before.
func CheckSlowClients(t *testing.T, b *membudget.Budget, addr, path, contentType string) {
	t.Helper()
	const (
		n     = 200
		claim = 16 << 20
		step  = 64 << 10
	)
	used0 := b.Used()
	sc := StartSlowClients(t, addr, path, contentType, n, claim, make([]byte, 1024))
	WaitFor(t, 10*time.Second, func() bool { return b.Used()-used0 == n*step },
		func() string {
			return fmt.Sprintf("budget holds %d for %d slow clients, want %d", b.Used()-used0, n, n*step)
		})
	if a := sc.Answers(); len(a) != 0 {
		t.Fatalf("slow clients were answered before sending their bodies: %v", a)
	}
	sc.Send(0, make([]byte, 200<<10))
	WaitFor(t, 10*time.Second, func() bool { return b.Used()-used0 == (n-1)*step+256<<10 },
		func() string {
			return fmt.Sprintf("budget holds %d after one client sent 201 KiB, want %d", b.Used()-used0, (n-1)*step+256<<10)
		})
	sc.Close()
	WaitFor(t, 10*time.Second, func() bool { return b.Used() == used0 },
		func() string { return fmt.Sprintf("budget holds %d after the clients left, want %d", b.Used(), used0) })
}

// CheckRefusedSlowClients starts 200 slow clients (16 MiB claimed, 1 KiB
// sent) against a receiver reserving from b, which must have exactly
// admit×64 KiB free: admit of them are admitted and hold 64 KiB each, the
// others are answered at once with wantStatus and a Retry-After, and the
// budget's peak stays within its limit.
func CheckRefusedSlowClients(t *testing.T, b *membudget.Budget, addr, path, contentType string, admit, wantStatus int) {
	t.Helper()
	const (
		n     = 200
		claim = 16 << 20
		step  = 64 << 10
	)
	used0 := b.Used()
	sc := StartSlowClients(t, addr, path, contentType, n, claim, make([]byte, 1024))
	WaitFor(t, 10*time.Second, func() bool { return len(sc.Answers()) == n-admit && b.Used()-used0 == int64(admit)*step },
		func() string {
			return fmt.Sprintf("%d answers (want %d refusals), budget holds %d (want %d)", len(sc.Answers()), n-admit, b.Used()-used0, admit*step)
		})
	for _, a := range sc.Answers() {
		if a.Status != wantStatus || a.RetryAfter == "" {
			t.Errorf("refused slow client got %d with Retry-After %q, want %d with a Retry-After", a.Status, a.RetryAfter, wantStatus)
		}
	}
	if b.Peak() > b.Limit() {
		t.Errorf("budget peak %d over its limit %d", b.Peak(), b.Limit())
	}
	sc.Close()
	WaitFor(t, 10*time.Second, func() bool { return b.Used() == used0 },
		func() string { return fmt.Sprintf("budget holds %d after the clients left, want %d", b.Used(), used0) })
}

// SlowClientCases runs the receivers' slow-client test: a handler made by
// serve (its consumer's call count is calls) on 127.0.0.1, given 200
// clients that claim a 16 MiB body and send 1 KiB. With room for all, each
// holds one InitialBytes step and grows only with what it sends; with room
// for 64, the others get refused (the receiver's refusal status, with
// Retry-After) at once and the budget never passes its limit. The consumer
// is never called.
func SlowClientCases(t *testing.T, serve func(*membudget.Budget) (h http.Handler, calls func() int), path, contentType string, refused int) {
	tests := []struct {
		name  string
		limit int64
		admit int // 0: room for all
	}{
		{name: "room for all", limit: 1 << 30},
		{name: "room for 64", limit: 64 * budgetio.InitialBytes, admit: 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := membudget.New(tt.limit)
			h, calls := serve(b)
			srv := httptest.NewServer(h)
			defer srv.Close()
			addr := srv.Listener.Addr().String()
			if tt.admit == 0 {
				CheckSlowClients(t, b, addr, path, contentType)
			} else {
				CheckRefusedSlowClients(t, b, addr, path, contentType, tt.admit, refused)
			}
			if n := calls(); n != 0 {
				t.Errorf("consumer called %d times", n)
			}
		})
	}
}

// Gzipped returns b compressed with gzip.
func Gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Deflated returns b compressed with zlib (Content-Encoding: deflate).
func Deflated(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// CountingReader counts the bytes read through it (N).
type CountingReader struct {
	R io.Reader
	N int64
}

func (c *CountingReader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N += int64(n)
	return n, err
}

// BudgetCase is one request of a receiver's budget test: the body and how
// it is sent.
type BudgetCase struct {
	Body        []byte
	ContentType string
	Encoding    string // Content-Encoding; "" for none
	Chunked     bool   // no Content-Length
}

// Serve sends c to h on path and returns the answer and the reader that
// counted what h read of the body.
func (c BudgetCase) Serve(h http.Handler, path string) (*httptest.ResponseRecorder, *CountingReader) {
	wire := &CountingReader{R: bytes.NewReader(c.Body)}
	req := httptest.NewRequest(http.MethodPost, path, wire)
	req.ContentLength = int64(len(c.Body))
	if c.Chunked {
		req.ContentLength = -1
	}
	req.Header.Set("Content-Type", c.ContentType)
	if c.Encoding != "" {
		req.Header.Set("Content-Encoding", c.Encoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec, wire
}

// CheckBudgetAfter checks that b holds inUse again after an answer and
// never went past its limit.
func CheckBudgetAfter(t *testing.T, b *membudget.Budget, inUse, limit int64) {
	t.Helper()
	if b.Used() != inUse {
		t.Errorf("budget holds %d after the answer, want %d", b.Used(), inUse)
	}
	if b.Peak() > max(limit, inUse) {
		t.Errorf("budget peak %d over its limit %d", b.Peak(), limit)
	}
}

// NewBudget returns a budget of limit bytes of which inUse are already
// held by others.
func NewBudget(limit, inUse int64) *membudget.Budget {
	b := membudget.New(limit)
	b.Acquire(inUse)
	return b
}
