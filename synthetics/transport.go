package synthetics

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/flowscope/flowscope/store"
)

// newTransport returns the prober's own transport: a new connection for
// every request (each run measures DNS, connect and TLS), no proxy, and
// dial and TLS handshake timeouts; the step's context bounds the rest.
func newTransport() *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSHandshakeTimeout:    10 * time.Second,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 1 << 20,
		ExpectContinueTimeout:  time.Second,
	}
}

// newClient returns a client over rt that does not follow redirects: a
// check asserts on the 3xx itself.
func newClient(rt http.RoundTripper) *http.Client {
	return &http.Client{
		Transport: rt,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// phaseTimer records the phases of one request from httptrace's hooks,
// which may run on the transport's dialing goroutines.
type phaseTimer struct {
	mu                  sync.Mutex
	dnsStart, dnsDone   time.Time
	connStart, connDone time.Time
	tlsStart, tlsDone   time.Time
	firstByte           time.Time
}

// withTrace returns ctx with httptrace hooks recording into t.
func withTrace(ctx context.Context, t *phaseTimer) context.Context {
	mark := func(f *time.Time, keepFirst bool) {
		now := time.Now()
		t.mu.Lock()
		if !keepFirst || f.IsZero() {
			*f = now
		}
		t.mu.Unlock()
	}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { mark(&t.dnsStart, true) },
		DNSDone:  func(httptrace.DNSDoneInfo) { mark(&t.dnsDone, false) },
		// Dialing several addresses calls these for each: the phase
		// runs from the first start to the last successful end.
		ConnectStart: func(string, string) { mark(&t.connStart, true) },
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				mark(&t.connDone, false)
			}
		},
		TLSHandshakeStart:    func() { mark(&t.tlsStart, true) },
		TLSHandshakeDone:     func(tls.ConnectionState, error) { mark(&t.tlsDone, false) },
		GotFirstResponseByte: func() { mark(&t.firstByte, true) },
	})
}

// timings returns the phases of a request that began at begin and ended
// (its body read) at end; a phase that did not complete is zero.
func (t *phaseTimer) timings(begin, end time.Time) store.SyntheticTimings {
	t.mu.Lock()
	defer t.mu.Unlock()
	span := func(from, to time.Time) time.Duration {
		if from.IsZero() || to.IsZero() || to.Before(from) {
			return 0
		}
		return to.Sub(from)
	}
	return store.SyntheticTimings{
		DNS:       span(t.dnsStart, t.dnsDone),
		Connect:   span(t.connStart, t.connDone),
		TLS:       span(t.tlsStart, t.tlsDone),
		FirstByte: span(begin, t.firstByte),
		Total:     end.Sub(begin),
	}
}
