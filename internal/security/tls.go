package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// TLSFiles names the server certificate and key (PEM) and, optionally, the
// CA bundle that client certificates must chain to. With ClientCAFile set,
// every client must present a certificate that verifies (mutual TLS).
type TLSFiles struct{ CertFile, KeyFile, ClientCAFile string }

// TLS serves a certificate (and client CA pool) that is reloaded without a
// restart: at most once per checkEvery a handshake stats the files and
// rereads them when one changed (modification time, size or identity);
// Reload rereads them at once. A failed reload keeps the previous
// certificate and CA and is logged. Its methods are safe for concurrent use.
type TLS struct {
	files      TLSFiles
	logger     *slog.Logger
	now        func() time.Time
	checkEvery time.Duration

	cur       atomic.Pointer[tlsState]
	lastCheck atomic.Int64 // now().UnixNano() of the last stat

	mu   sync.Mutex     // serializes loads; guards seen
	seen [3]os.FileInfo // the files as last stat'ed before a load (nil: stat failed)
}

// tlsState is one loaded generation of certificate and client CA pool.
type tlsState struct {
	cert      *tls.Certificate
	clientCAs *x509.CertPool // nil without mutual TLS
}

// NewTLS loads files now; its error names the file that failed. A nil
// logger discards.
func NewTLS(files TLSFiles, logger *slog.Logger) (*TLS, error) {
	return newTLS(files, logger, time.Now)
}

func newTLS(files TLSFiles, logger *slog.Logger, now func() time.Time) (*TLS, error) {
	if files.CertFile == "" || files.KeyFile == "" {
		return nil, errors.New("security: TLS needs both a certificate file and a key file")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t := &TLS{files: files, logger: logger, now: now, checkEvery: time.Second}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.loadLocked(t.stat()); err != nil {
		return nil, err
	}
	t.lastCheck.Store(now().UnixNano())
	return t, nil
}

// MutualTLS reports whether client certificates are required and verified.
func (t *TLS) MutualTLS() bool { return t.files.ClientCAFile != "" }

// Config returns a server configuration: TLS 1.2 or later, ALPN "h2" and
// "http/1.1", and the current certificate (and, with mutual TLS, the current
// client CA pool, through GetConfigForClient, which derives the per-handshake
// configuration from this one). Each call returns a new Config.
func (t *TLS) Config() *tls.Config {
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: t.getCertificate,
	}
	if !t.MutualTLS() {
		return cfg
	}
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	type derived struct {
		st  *tlsState
		cfg *tls.Config
	}
	var cache atomic.Pointer[derived]
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		t.maybeReload()
		st := t.cur.Load()
		if d := cache.Load(); d != nil && d.st == st {
			return d.cfg, nil
		}
		c := cfg.Clone()
		c.GetConfigForClient = nil
		c.ClientCAs = st.clientCAs
		cache.Store(&derived{st, c})
		return c, nil
	}
	return cfg
}

func (t *TLS) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	t.maybeReload()
	return t.cur.Load().cert, nil
}

// Reload rereads the files at once. If it fails, it logs, returns the error
// and keeps the previous certificate and CA.
func (t *TLS) Reload() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.loadLocked(t.stat())
}

// maybeReload stats the files when checkEvery has passed since the last
// check, and reloads them when they changed since the last attempt.
// Concurrent handshakes do not wait for each other: one checks, the others
// go on with the current state.
func (t *TLS) maybeReload() {
	now := t.now().UnixNano()
	last := t.lastCheck.Load()
	if now-last < int64(t.checkEvery) || !t.lastCheck.CompareAndSwap(last, now) {
		return
	}
	if !t.mu.TryLock() {
		return
	}
	defer t.mu.Unlock()
	seen := t.stat()
	if sameFiles(seen, t.seen) {
		return
	}
	_ = t.loadLocked(seen) // logged; a failure is retried when the files change again
}

func (t *TLS) paths() [3]string {
	return [3]string{t.files.CertFile, t.files.KeyFile, t.files.ClientCAFile}
}

func (t *TLS) stat() [3]os.FileInfo {
	var fi [3]os.FileInfo
	for i, p := range t.paths() {
		if p != "" {
			fi[i], _ = os.Stat(p) // a missing file shows as a change, and then fails to load
		}
	}
	return fi
}

func sameFiles(a, b [3]os.FileInfo) bool {
	for i := range a {
		switch {
		case a[i] == nil && b[i] == nil:
		case a[i] == nil || b[i] == nil:
			return false
		case !os.SameFile(a[i], b[i]) || !a[i].ModTime().Equal(b[i].ModTime()) || a[i].Size() != b[i].Size():
			return false
		}
	}
	return true
}

// loadLocked reads the files; seen is their stat from before the read.
// t.mu must be held.
func (t *TLS) loadLocked(seen [3]os.FileInfo) error {
	t.seen = seen
	st, err := t.read()
	old := t.cur.Load()
	if err != nil {
		if old != nil {
			t.logger.Error("TLS reload failed; keeping the previous certificate", "err", err)
		}
		return err
	}
	t.cur.Store(st)
	leaf := st.cert.Leaf
	attrs := []any{"cert_file", t.files.CertFile, "subject", leaf.Subject.String(),
		"serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter, "mutual_tls", t.MutualTLS()}
	if old == nil {
		t.logger.Info("TLS certificate loaded", attrs...)
	} else {
		t.logger.Info("TLS certificate reloaded", attrs...)
	}
	if t.now().After(leaf.NotAfter) {
		t.logger.Warn("TLS certificate has expired", "cert_file", t.files.CertFile, "not_after", leaf.NotAfter)
	}
	return nil
}

func (t *TLS) read() (*tlsState, error) {
	certPEM, err := os.ReadFile(t.files.CertFile)
	if err != nil {
		return nil, fmt.Errorf("security: TLS certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(t.files.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("security: TLS key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("security: TLS certificate %s with key %s: %w", t.files.CertFile, t.files.KeyFile, err)
	}
	if cert.Leaf == nil { // X509KeyPair fills Leaf unless GODEBUG x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("security: TLS certificate %s: %w", t.files.CertFile, err)
		}
	}
	st := &tlsState{cert: &cert}
	if t.files.ClientCAFile != "" {
		caPEM, err := os.ReadFile(t.files.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("security: TLS client CA: %w", err)
		}
		st.clientCAs = x509.NewCertPool()
		if !st.clientCAs.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("security: TLS client CA %s: no PEM certificate found", t.files.ClientCAFile)
		}
	}
	return st, nil
}
