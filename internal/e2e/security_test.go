package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/credentials"

	"github.com/flowscope/flowscope/internal/config"
	"github.com/flowscope/flowscope/internal/security"
)

// The tokens of the security tests (at least 16 bytes each).
const (
	ingestToken = "ingest-0123456789abcdef"
	readToken   = "read-0123456789abcdef01"
	writeToken  = "write-0123456789abcdef0"
)

// secureServer is a collector with TLS (mTLS when clientCA) and all three
// tokens, and an HTTPS client that trusts it (with a client certificate).
type secureServer struct {
	*server
	certs  security.TestCerts
	client *http.Client
	tls    *tls.Config // the client side
}

func startSecureServer(t *testing.T, clientCA bool) *secureServer {
	t.Helper()
	certs, err := security.WriteTestCerts(t.TempDir(), "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "", func(c *config.Config) {
		c.Security.TLS.CertFile, c.Security.TLS.KeyFile = certs.CertFile, certs.KeyFile
		if clientCA {
			c.Security.TLS.ClientCAFile = certs.CAFile
		}
		c.Security.IngestToken, c.Security.ReadToken, c.Security.WriteToken = ingestToken, readToken, writeToken
	})
	clientCert, err := tls.LoadX509KeyPair(certs.ClientCertFile, certs.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: certs.CAPool, Certificates: []tls.Certificate{clientCert}, MinVersion: tls.VersionTLS12}
	return &secureServer{server: s, certs: certs, tls: cfg,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}}
}

// do sends method https://<HTTP addr>path with token (none when "") and
// returns the status, the WWW-Authenticate header and the body.
func (s *secureServer) do(t *testing.T, method, path, token, contentType string, body []byte) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+s.addrs.HTTP+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)
}

// hasService reports whether the collector lists service (read token).
func (s *secureServer) hasService(t *testing.T, service string) bool {
	t.Helper()
	code, _, body := s.do(t, "GET", "/api/v1/services", readToken, "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/services with the read token: %d %s", code, body)
	}
	return strings.Contains(body, `"`+service+`"`)
}

// exportSpans sends one span of service with the OpenTelemetry Go SDK over
// OTLP/gRPC or OTLP/HTTP with TLS and the token, and returns the export
// error (the provider's shutdown flushes synchronously).
func (s *secureServer) exportSpans(t *testing.T, proto, service, token string, tlsCfg *tls.Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	headers := map[string]string{}
	if token != "" {
		headers["authorization"] = "Bearer " + token
	}
	var exp *otlptrace.Exporter
	var err error
	if proto == "grpc" {
		exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.addrs.OTLPGRPC),
			otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tlsCfg)), otlptracegrpc.WithHeaders(headers),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	} else {
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.addrs.OTLPHTTP),
			otlptracehttp.WithTLSClientConfig(tlsCfg), otlptracehttp.WithHeaders(headers),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	}
	if err != nil {
		t.Fatal(err)
	}
	var exportErr error
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(errSpanProcessor{&exportErr, exp}),
		sdktrace.WithResource(resource.NewWithAttributes("", attribute.String("service.name", service))))
	_, span := tp.Tracer("e2e").Start(ctx, "op")
	span.End()
	tp.Shutdown(ctx)
	exp.Shutdown(ctx)
	return exportErr
}

// errSpanProcessor exports each span at its end, synchronously, and keeps
// the first export error (the SDK's processors only log it).
type errSpanProcessor struct {
	err *error
	exp *otlptrace.Exporter
}

func (p errSpanProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (p errSpanProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if err := p.exp.ExportSpans(context.Background(), []sdktrace.ReadOnlySpan{s}); err != nil && *p.err == nil {
		*p.err = err
	}
}
func (p errSpanProcessor) Shutdown(context.Context) error   { return nil }
func (p errSpanProcessor) ForceFlush(context.Context) error { return nil }

// TestOTelSDKOverTLS sends spans with the OpenTelemetry Go SDK's gRPC and
// HTTP exporters over TLS and over mTLS with the ingest token: they are
// stored. Without the token, with a wrong one, with the read token, or
// (mTLS) without a client certificate they are refused and nothing is
// stored.
func TestOTelSDKOverTLS(t *testing.T) {
	for _, mtls := range []bool{false, true} {
		name := "tls"
		if mtls {
			name = "mtls"
		}
		t.Run(name, func(t *testing.T) {
			s := startSecureServer(t, mtls)
			noClientCert := &tls.Config{RootCAs: s.certs.CAPool, MinVersion: tls.VersionTLS12}
			for _, proto := range []string{"grpc", "http"} {
				ok := fmt.Sprintf("%s-%s-ok", name, proto)
				if err := s.exportSpans(t, proto, ok, ingestToken, s.tls); err != nil {
					t.Fatalf("%s export with the ingest token: %v", proto, err)
				}
				waitFor(t, 10*time.Second, ok+" stored", func() (bool, string) { return s.hasService(t, ok), "" })
				refused := []struct{ what, token string }{{"no token", ""}, {"a wrong token", ingestToken + "x"}, {"the read token", readToken}}
				for _, r := range refused {
					svc := fmt.Sprintf("%s-%s-%s", name, proto, strings.ReplaceAll(r.what, " ", "-"))
					err := s.exportSpans(t, proto, svc, r.token, s.tls)
					if err == nil || !(strings.Contains(err.Error(), "Unauthenticated") || strings.Contains(err.Error(), "401")) {
						t.Errorf("%s export with %s: error %v, want Unauthenticated / 401", proto, r.what, err)
					}
				}
				if mtls {
					if err := s.exportSpans(t, proto, name+"-"+proto+"-nocert", ingestToken, noClientCert); err == nil {
						t.Errorf("%s export without a client certificate succeeded under mTLS", proto)
					}
				}
			}
			// Nothing refused was stored.
			_, _, body := s.do(t, "GET", "/api/v1/services", readToken, "", nil)
			for _, bad := range []string{"no-token", "a-wrong-token", "the-read-token", "nocert"} {
				if strings.Contains(body, bad) {
					t.Errorf("a refused export was stored: %s", body)
				}
			}
		})
	}
}

// TestTokenScopes checks what each token grants on the API port: the
// ingest token does not read, the read token does not import or reload,
// the write token does both; a 401 names the scope in WWW-Authenticate.
// Health probes and the security status need no token.
func TestTokenScopes(t *testing.T) {
	s := startSecureServer(t, false)
	file, err := os.ReadFile(filepath.Join("..", "..", "testdata", "spigo", "json_metrics", "lamp_flow.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, token, contentType string
		body                                   []byte
		status                                 int
		scope                                  string // in WWW-Authenticate, for 401
	}{
		{"read without a token", "GET", "/api/v1/services", "", "", nil, 401, `scope="read"`},
		{"read with the ingest token", "GET", "/api/v1/services", ingestToken, "", nil, 401, `scope="read"`},
		{"read with the read token", "GET", "/api/v1/services", readToken, "", nil, 200, ""},
		{"read with the write token", "GET", "/api/v1/services", writeToken, "", nil, 200, ""},
		{"metrics with the ingest token", "GET", "/metrics", ingestToken, "", nil, 401, `scope="read"`},
		{"metrics with the read token", "GET", "/metrics", readToken, "", nil, 200, ""},
		{"import with the read token", "POST", "/api/v1/import?name=lamp.json", readToken, "application/octet-stream", file, 401, `scope="write"`},
		{"reload with the read token", "POST", "/api/v1/rules:reload", readToken, "application/json", nil, 401, `scope="write"`},
		{"import with the write token", "POST", "/api/v1/import?name=lamp.json", writeToken, "application/octet-stream", file, 200, ""},
		{"health without a token", "GET", "/healthz", "", "", nil, 200, ""},
		{"security status without a token", "GET", "/api/v1/security", "", "", nil, 200, ""},
		{"UI without a token", "GET", "/", "", "", nil, 200, ""},
	}
	for _, tt := range tests {
		code, auth, body := s.do(t, tt.method, tt.path, tt.token, tt.contentType, tt.body)
		if code != tt.status || !strings.Contains(auth, tt.scope) || (code == 401 && !strings.HasPrefix(auth, `Bearer realm="flowscope"`)) {
			t.Errorf("%s: %d, WWW-Authenticate %q; want %d and %q (%.200s)", tt.name, code, auth, tt.status, tt.scope, body)
		}
		for _, tok := range []string{ingestToken, readToken, writeToken} {
			if strings.Contains(body, tok) || strings.Contains(auth, tok) {
				t.Errorf("%s: the answer reveals a token", tt.name)
			}
		}
	}
	code, _, body := s.do(t, "GET", "/api/v1/security", "", "", nil)
	if code != 200 || !strings.Contains(body, `"tls":true`) || !strings.Contains(body, `"read":true`) || !strings.Contains(body, `"warnings":[]`) {
		t.Errorf("GET /api/v1/security: %d %s", code, body)
	}
}

// TestHostHeader checks the DNS-rebinding protection of the HTTP
// listeners: a foreign Host is refused with 421 before any token check or
// read; loopback names with or without the port pass.
func TestHostHeader(t *testing.T) {
	s := startServer(t, "")
	_, port, _ := net.SplitHostPort(s.addrs.HTTP)
	zipkinSpan := []byte(`[{"traceId":"5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","name":"op","timestamp":1700000000000000,"duration":1000,"localEndpoint":{"serviceName":"rebound"}}]`)
	for _, tt := range []struct {
		addr, method, path, host string
		body                     []byte
		status                   int
	}{
		{s.addrs.HTTP, "GET", "/api/v1/services", "attacker.example", nil, 421},
		{s.addrs.HTTP, "GET", "/api/v1/services", "attacker.example:" + port, nil, 421},
		{s.addrs.HTTP, "GET", "/", "attacker.example", nil, 421},
		{s.addrs.Zipkin, "POST", "/api/v2/spans", "attacker.example", zipkinSpan, 421},
		{s.addrs.HTTP, "GET", "/api/v1/services", "localhost:" + port, nil, 200},
		{s.addrs.HTTP, "GET", "/api/v1/services", "LOCALHOST", nil, 200},
		{s.addrs.HTTP, "GET", "/api/v1/services", "127.0.0.1:" + port, nil, 200},
		{s.addrs.HTTP, "GET", "/api/v1/services", "[::1]:" + port, nil, 200},
	} {
		req, err := http.NewRequest(tt.method, "http://"+tt.addr+tt.path, bytes.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tt.host
		if tt.body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s with Host %q: %d %s, want %d", tt.method, tt.path, tt.host, resp.StatusCode, b, tt.status)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: no X-Content-Type-Options: nosniff", tt.method, tt.path)
		}
	}
	if _, body := s.get(t, "/api/v1/services"); strings.Contains(string(body), "rebound") {
		t.Error("the span posted with a foreign Host was stored")
	}
}

// TestCertificateReload replaces the certificate files of a running
// collector: new handshakes present the new certificate, without a
// restart; a broken file keeps the one in use.
func TestCertificateReload(t *testing.T) {
	s := startSecureServer(t, false)
	serial := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", s.addrs.HTTP, &tls.Config{InsecureSkipVerify: true}) // only to read the certificate
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	next, err := security.WriteTestCerts(t.TempDir(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	copyFile := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		// Write beside and rename, as certificate managers do.
		if err := os.WriteFile(to+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(to+".new", to); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(next.KeyFile, s.certs.KeyFile)
	copyFile(next.CertFile, s.certs.CertFile)
	var after string
	waitFor(t, 10*time.Second, "the new certificate served", func() (bool, string) {
		after = serial()
		return after != before, "serial " + after
	})
	// Verified against the new CA.
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(next.CAFile)
	pool.AppendCertsFromPEM(ca)
	conn, err := tls.Dial("tcp", s.addrs.OTLPHTTP, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("the OTLP/HTTP listener does not serve the new certificate: %v", err)
	}
	conn.Close()
	// A broken certificate file: the new one stays.
	if err := os.WriteFile(s.certs.CertFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if got := serial(); got != after {
		t.Errorf("after a broken certificate file: serial %s, want %s (the one in use)", got, after)
	}
}
