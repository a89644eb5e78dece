package security

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/logtest"
)

// fakeClock is a clock for the reload check, advanced by the test.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newFakeClock() *fakeClock {
	c := new(fakeClock)
	c.ns.Store(time.Now().UnixNano())
	return c
}

func testCerts(t *testing.T) TestCerts {
	t.Helper()
	tc, err := WriteTestCerts(t.TempDir(), "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// serveTLS serves cfg on 127.0.0.1 and returns the base URL; the handler
// answers with the common name of the client certificate, if any.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig: cfg,
		ErrorLog:  slog.NewLogLogger(slog.DiscardHandler, slog.LevelError), // refused handshakes are expected
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(r.TLS.PeerCertificates) > 0 {
				_, _ = w.Write([]byte(r.TLS.PeerCertificates[0].Subject.CommonName))
			}
		}),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeTLS(ln, "", "")
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return "https://" + ln.Addr().String()
}

// get makes one request on a new connection and returns the server's
// certificate and the connection state.
func get(url string, cfg *tls.Config) (*tls.ConnectionState, string, error) {
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get(url)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		return nil, "", err
	}
	return resp.TLS, body.String(), nil
}

func poolOf(t *testing.T, caFiles ...string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, f := range caFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(b)
	}
	return pool
}

func clientCert(t *testing.T, tc TestCerts) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(tc.ClientCertFile, tc.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func serialOf(t *testing.T, certFile string) *big.Int {
	t.Helper()
	c, err := tls.LoadX509KeyPair(certFile, strings.TrimSuffix(certFile, ".pem")+"-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.SerialNumber
}

// replaceFile replaces dst by a copy of src the way Kubernetes and
// cert-manager do: a new file renamed over the old one.
func replaceFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".tmp"
	writeFile(t, tmp, string(b))
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

func TestTLSServerCertificate(t *testing.T) {
	tc := testCerts(t)
	tt, err := NewTLS(TLSFiles{CertFile: tc.CertFile, KeyFile: tc.KeyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tt.MutualTLS() {
		t.Error("MutualTLS without a client CA")
	}
	cfg := tt.Config()
	if cfg.MinVersion != tls.VersionTLS12 || !strings.Contains(strings.Join(cfg.NextProtos, ","), "h2,http/1.1") {
		t.Errorf("MinVersion %x, NextProtos %q", cfg.MinVersion, cfg.NextProtos)
	}
	url := serveTLS(t, cfg)

	cs, _, err := get(url, &tls.Config{RootCAs: tc.CAPool})
	if err != nil {
		t.Fatalf("handshake verified by the CA: %v", err)
	}
	if cs.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN %q, want h2", cs.NegotiatedProtocol)
	}
	if _, _, err := get(url, &tls.Config{RootCAs: testCerts(t).CAPool}); err == nil {
		t.Error("a client trusting another CA accepted the certificate")
	}
	if _, _, err := get(url, &tls.Config{RootCAs: tc.CAPool, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 accepted")
	}
}

func TestTLSMutual(t *testing.T) {
	tc, other := testCerts(t), testCerts(t)
	tt, err := NewTLS(TLSFiles{CertFile: tc.CertFile, KeyFile: tc.KeyFile, ClientCAFile: tc.CAFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !tt.MutualTLS() {
		t.Error("MutualTLS false with a client CA")
	}
	url := serveTLS(t, tt.Config())
	tests := []struct {
		name   string
		certs  []tls.Certificate
		wantOK bool
	}{
		{"no client certificate", nil, false},
		{"client certificate from another CA", []tls.Certificate{clientCert(t, other)}, false},
		{"server certificate as client certificate", []tls.Certificate{mustPair(t, tc.CertFile, tc.KeyFile)}, false},
		{"client certificate from the CA", []tls.Certificate{clientCert(t, tc)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				cs, body, err := get(url, &tls.Config{RootCAs: tc.CAPool, Certificates: tt.certs, MaxVersion: v})
				if (err == nil) != tt.wantOK {
					t.Errorf("TLS %x: err %v, want ok %v", v, err, tt.wantOK)
				}
				if tt.wantOK && (body != "flowscope test client" || cs.NegotiatedProtocol != "h2") {
					t.Errorf("TLS %x: the handler saw client %q, ALPN %q", v, body, cs.NegotiatedProtocol)
				}
			}
		})
	}
}

func mustPair(t *testing.T, certFile, keyFile string) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTLSReload(t *testing.T) {
	a, b := testCerts(t), testCerts(t)
	// The server starts with copies of a's files, which the test replaces.
	dir := t.TempDir()
	files := TLSFiles{CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem")}
	replaceFile(t, a.CertFile, files.CertFile)
	replaceFile(t, a.KeyFile, files.KeyFile)
	var logs logtest.Buffer
	clock := newFakeClock()
	tt, err := newTLS(files, slog.New(slog.NewTextHandler(&logs, nil)), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	url := serveTLS(t, tt.Config())
	client := &tls.Config{RootCAs: poolOf(t, a.CAFile, b.CAFile)}
	serial := func() *big.Int {
		t.Helper()
		cs, _, err := get(url, client)
		if err != nil {
			t.Fatal(err)
		}
		return cs.PeerCertificates[0].SerialNumber
	}
	serialA, serialB := serialOf(t, a.CertFile), serialOf(t, b.CertFile)
	if got := serial(); got.Cmp(serialA) != 0 {
		t.Fatalf("serial %x, want a's %x", got, serialA)
	}

	// Replaced files are seen by the first handshake a second after the last check.
	replaceFile(t, b.CertFile, files.CertFile)
	replaceFile(t, b.KeyFile, files.KeyFile)
	if got := serial(); got.Cmp(serialA) != 0 {
		t.Fatalf("serial %x before a second passed, want a's %x", got, serialA)
	}
	clock.Advance(time.Second)
	if got := serial(); got.Cmp(serialB) != 0 {
		t.Fatalf("serial %x after a second, want b's %x", got, serialB)
	}

	// Reload rereads files rewritten in place at once.
	for _, c := range [][2]string{{a.CertFile, files.CertFile}, {a.KeyFile, files.KeyFile}} {
		content, err := os.ReadFile(c[0])
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, c[1], string(content))
	}
	if err := tt.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got.Cmp(serialA) != 0 {
		t.Fatalf("serial %x after Reload, want a's %x", got, serialA)
	}

	// A broken file fails Reload and keeps the certificate.
	writeFile(t, files.CertFile, "-----BEGIN CERTIFICATE-----\nbroken\n")
	if err := tt.Reload(); err == nil || !strings.Contains(err.Error(), files.CertFile) {
		t.Fatalf("Reload of a broken certificate: %v", err)
	}
	if got := serial(); got.Cmp(serialA) != 0 {
		t.Fatalf("serial %x after a failed Reload, want a's %x", got, serialA)
	}
	// A certificate that does not match the key: also when seen by a handshake.
	replaceFile(t, b.CertFile, files.CertFile)
	clock.Advance(time.Second)
	if got := serial(); got.Cmp(serialA) != 0 {
		t.Fatalf("serial %x with a mismatched key, want a's %x", got, serialA)
	}
	if err := tt.Reload(); err == nil || !strings.Contains(err.Error(), files.KeyFile) {
		t.Fatalf("Reload with a mismatched key: %v", err)
	}
	if n := strings.Count(logs.String(), "TLS reload failed"); n != 3 {
		t.Errorf("%d reload failures logged, want 3:\n%s", n, logs.String())
	}
	// Files that stay broken are not retried (nor logged) on every check.
	clock.Advance(time.Second)
	serial()
	if n := strings.Count(logs.String(), "TLS reload failed"); n != 3 {
		t.Errorf("%d reload failures logged, want 3:\n%s", n, logs.String())
	}
	// The fixed key is picked up.
	replaceFile(t, b.KeyFile, files.KeyFile)
	clock.Advance(time.Second)
	if got := serial(); got.Cmp(serialB) != 0 {
		t.Fatalf("serial %x after fixing the key, want b's %x", got, serialB)
	}
}

// TestTLSReloadClientCA checks that a client CA removed by a reload is no
// longer accepted, also by resuming a TLS session made before.
func TestTLSReloadClientCA(t *testing.T) {
	a, b := testCerts(t), testCerts(t)
	caFile := filepath.Join(t.TempDir(), "clients.pem")
	replaceFile(t, a.CAFile, caFile)
	tt, err := NewTLS(TLSFiles{CertFile: a.CertFile, KeyFile: a.KeyFile, ClientCAFile: caFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := serveTLS(t, tt.Config())
	client := &tls.Config{RootCAs: a.CAPool, Certificates: []tls.Certificate{clientCert(t, a)},
		ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	if _, _, err := get(url, client); err != nil {
		t.Fatal(err)
	}
	cs, _, err := get(url, client)
	if err != nil {
		t.Fatal(err)
	}
	if !cs.DidResume {
		t.Fatal("the second connection did not resume the session; the test needs it")
	}

	replaceFile(t, b.CAFile, caFile)
	if err := tt.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(url, client); err == nil {
		t.Error("a client of the removed CA was accepted after the reload")
	}
	client = &tls.Config{RootCAs: a.CAPool, Certificates: []tls.Certificate{clientCert(t, b)}}
	if _, _, err := get(url, client); err != nil {
		t.Errorf("a client of the new CA: %v", err)
	}

	writeFile(t, caFile, "no certificates here\n")
	if err := tt.Reload(); err == nil || !strings.Contains(err.Error(), caFile) {
		t.Errorf("Reload of an empty CA bundle: %v", err)
	}
	if _, _, err := get(url, client); err != nil {
		t.Errorf("a client of the kept CA after a failed reload: %v", err)
	}
}

func TestNewTLSErrors(t *testing.T) {
	tc := testCerts(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	writeFile(t, garbage, "garbage")
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name  string
		files TLSFiles
		want  string
	}{
		{"no key", TLSFiles{CertFile: tc.CertFile}, "key"},
		{"missing cert", TLSFiles{CertFile: missing, KeyFile: tc.KeyFile}, missing},
		{"missing key", TLSFiles{CertFile: tc.CertFile, KeyFile: missing}, missing},
		{"garbage cert", TLSFiles{CertFile: garbage, KeyFile: tc.KeyFile}, garbage},
		{"mismatched key", TLSFiles{CertFile: tc.CertFile, KeyFile: tc.ClientKeyFile}, tc.ClientKeyFile},
		{"missing CA", TLSFiles{CertFile: tc.CertFile, KeyFile: tc.KeyFile, ClientCAFile: missing}, missing},
		{"garbage CA", TLSFiles{CertFile: tc.CertFile, KeyFile: tc.KeyFile, ClientCAFile: garbage}, garbage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTLS(tt.files, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewTLS: %v, want an error naming %q", err, tt.want)
			}
			var pe *os.PathError
			if strings.Contains(tt.name, "missing") && !errors.As(err, &pe) {
				t.Errorf("NewTLS: %v does not wrap the *os.PathError", err)
			}
		})
	}
}
