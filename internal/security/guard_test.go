package security

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// testScope maps the test routes the way the collector maps its own.
func testScope(r *http.Request) Scope {
	switch p := r.URL.Path; {
	case p == "/healthz", p == "/", p == "/api/v1/security":
		return ScopeNone
	case p == "/v1/traces", p == "/api/v2/spans":
		return ScopeIngest
	case p == "/api/v1/import":
		return ScopeWrite
	}
	return ScopeRead
}

func testTokens(t testing.TB) *Tokens {
	t.Helper()
	tok, err := LoadTokens(TokenSources{
		Ingest: TokenSource{Value: ingestTok}, Read: TokenSource{Value: readTok}, Write: TokenSource{Value: writeTok},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestGuard(t *testing.T) {
	tokens := testTokens(t)
	const (
		own     = "http://127.0.0.1:8686"
		evil    = "https://evil.example"
		ui      = "https://ui.example"
		proto   = "application/x-protobuf"
		jsonCT  = "application/json"
		mpart   = "multipart/form-data; boundary=x"
		bIngest = "Bearer " + ingestTok
		bRead   = "Bearer " + readTok
		bWrite  = "Bearer " + writeTok
	)
	type hdr = map[string]string
	tests := []struct {
		name         string
		method       string // default GET
		target       string // default /healthz
		host         string // default 127.0.0.1:8686
		listen       string // default 127.0.0.1:8686
		allowedHosts []string
		origins      []string
		noTokens     bool
		header       hdr

		want       int    // status
		wantNext   bool   // next ran
		wantReason string // passed to OnRefuse
		wantHeader hdr    // exact values
		wantNo     []string
	}{
		// 1. Host.
		{name: "foreign Host on loopback", host: "attacker.example", want: 421, wantReason: "host"},
		{name: "foreign Host with port on loopback", host: "attacker.example:8686", want: 421, wantReason: "host"},
		{name: "foreign Host before token", host: "attacker.example", target: "/api/v1/traces",
			want: 421, wantReason: "host", wantNo: []string{"WWW-Authenticate"}},
		{name: "empty Host on loopback", host: "none", want: 421, wantReason: "host"},
		{name: "localhost", host: "localhost:8686", want: 200, wantNext: true},
		{name: "LOCALHOST. (case, trailing dot)", host: "LOCALHOST.:8686", want: 200, wantNext: true},
		{name: "127.0.0.1", host: "127.0.0.1:8686", want: 200, wantNext: true},
		{name: "[::1]", host: "[::1]:8686", want: 200, wantNext: true},
		{name: "[::1] without port", host: "[::1]", want: 200, wantNext: true},
		{name: "sub.localhost", host: "ui.localhost:8686", want: 200, wantNext: true},
		{name: "localhost listener allows 127.0.0.1", listen: "localhost:8686", host: "127.0.0.1:8686", want: 200, wantNext: true},
		{name: "[::1] listener allows localhost", listen: "[::1]:8686", host: "localhost", want: 200, wantNext: true},
		{name: "0.0.0.0 without names: any Host", listen: "0.0.0.0:8686", host: "whatever.example:8686", want: 200, wantNext: true},
		{name: ":port without names: any Host", listen: ":8686", host: "whatever.example", want: 200, wantNext: true},
		{name: "[::] without names: any Host", listen: "[::]:8686", host: "whatever.example", want: 200, wantNext: true},
		{name: "0.0.0.0 with names: listed", listen: "0.0.0.0:8686", allowedHosts: []string{"flowscope.example"},
			host: "FlowScope.Example.:8686", want: 200, wantNext: true},
		{name: "0.0.0.0 with names: unlisted", listen: "0.0.0.0:8686", allowedHosts: []string{"flowscope.example"},
			host: "evil.example:8686", want: 421, wantReason: "host"},
		{name: "0.0.0.0 with names: localhost not implied", listen: "0.0.0.0:8686", allowedHosts: []string{"flowscope.example"},
			host: "localhost:8686", want: 421, wantReason: "host"},
		{name: "0.0.0.0 with names: IP address", listen: "0.0.0.0:8686", allowedHosts: []string{"flowscope.example"},
			host: "10.1.2.3:8686", want: 200, wantNext: true},
		{name: "allowed host given with a port", listen: "0.0.0.0:8686", allowedHosts: []string{"flowscope.example:443"},
			host: "flowscope.example", want: 200, wantNext: true},
		{name: "wildcard subdomain", listen: "0.0.0.0:8686", allowedHosts: []string{"*.example.com"},
			host: "a.b.example.com", want: 200, wantNext: true},
		{name: "wildcard not the apex", listen: "0.0.0.0:8686", allowedHosts: []string{"*.example.com"},
			host: "example.com", want: 421, wantReason: "host"},
		{name: "wildcard not a lookalike", listen: "0.0.0.0:8686", allowedHosts: []string{"*.example.com"},
			host: "evilexample.com", want: 421, wantReason: "host"},
		{name: "star on loopback", allowedHosts: []string{"*"}, host: "anything.example", want: 200, wantNext: true},
		{name: "specific IP listener", listen: "10.0.0.5:8686", host: "10.0.0.5:8686", want: 200, wantNext: true},
		{name: "specific IP listener, name", listen: "10.0.0.5:8686", host: "evil.example", want: 421, wantReason: "host"},
		{name: "named listener", listen: "flowscope.internal:8686", host: "flowscope.internal:8686", want: 200, wantNext: true},
		{name: "named listener, localhost", listen: "flowscope.internal:8686", host: "localhost:8686", want: 421, wantReason: "host"},

		// 3. Cross-site requests.
		{name: "cross-site POST json", method: "POST", target: "/v1/traces",
			header: hdr{"Origin": evil, "Sec-Fetch-Site": "cross-site", "Content-Type": jsonCT, "Authorization": bIngest},
			want:   403, wantReason: "csrf"},
		{name: "cross-site POST text/plain", method: "POST", target: "/api/v1/import",
			header: hdr{"Origin": evil, "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
			want:   403, wantReason: "csrf"},
		{name: "zipkin text/plain from an old browser", method: "POST", target: "/api/v2/spans",
			header: hdr{"Origin": evil, "Content-Type": "text/plain;charset=UTF-8"}, want: 403, wantReason: "csrf"},
		{name: "cross-site without Origin", method: "POST", target: "/healthz",
			header: hdr{"Sec-Fetch-Site": "cross-site"}, want: 403, wantReason: "csrf"},
		{name: "same-site is not same-origin", method: "POST", target: "/healthz",
			header: hdr{"Origin": "http://ui.localhost:8686", "Sec-Fetch-Site": "same-site"}, want: 403, wantReason: "csrf"},
		{name: "DELETE cross-site", method: "DELETE", target: "/healthz",
			header: hdr{"Origin": evil, "Sec-Fetch-Site": "cross-site"}, want: 403, wantReason: "csrf"},
		{name: "Origin null", method: "POST", target: "/healthz",
			header: hdr{"Origin": "null", "Content-Type": jsonCT}, want: 403, wantReason: "csrf"},
		{name: "Origin null, cross-site", method: "POST", target: "/healthz",
			header: hdr{"Origin": "null", "Sec-Fetch-Site": "cross-site", "Content-Type": jsonCT}, want: 403, wantReason: "csrf"},
		{name: "same-origin POST json", method: "POST", target: "/api/v1/import",
			header: hdr{"Origin": own, "Sec-Fetch-Site": "same-origin", "Content-Type": jsonCT, "Authorization": bWrite},
			want:   200, wantNext: true},
		{name: "own Origin, old browser", method: "POST", target: "/healthz",
			header: hdr{"Origin": own, "Content-Type": jsonCT}, want: 200, wantNext: true},
		{name: "own Origin over a TLS-terminating proxy", method: "POST", target: "/healthz",
			header: hdr{"Origin": "https://127.0.0.1:8686", "Content-Type": jsonCT}, want: 200, wantNext: true},
		{name: "same-origin behind a proxy rewriting Host", method: "POST", target: "/healthz",
			header: hdr{"Origin": "https://flowscope.example", "Sec-Fetch-Site": "same-origin", "Content-Type": jsonCT},
			want:   200, wantNext: true},
		{name: "Sec-Fetch-Site none", method: "POST", target: "/healthz",
			header: hdr{"Sec-Fetch-Site": "none", "Content-Type": jsonCT}, want: 200, wantNext: true},
		{name: "curl protobuf", method: "POST", target: "/v1/traces",
			header: hdr{"Content-Type": proto, "Authorization": bIngest}, want: 200, wantNext: true},
		{name: "curl without Content-Type", method: "POST", target: "/healthz", want: 200, wantNext: true},
		{name: "curl text/plain", method: "POST", target: "/api/v1/import",
			header: hdr{"Content-Type": "text/plain", "Authorization": bWrite}, want: 415, wantReason: "content_type"},
		{name: "same-origin Text/Plain", method: "POST", target: "/api/v1/import",
			header: hdr{"Origin": own, "Sec-Fetch-Site": "same-origin", "Content-Type": "Text/Plain; charset=utf-8", "Authorization": bWrite},
			want:   415, wantReason: "content_type"},
		{name: "curl form-urlencoded", method: "POST", target: "/api/v1/import",
			header: hdr{"Content-Type": "application/x-www-form-urlencoded"}, want: 415, wantReason: "content_type"},
		{name: "allowed origin text/plain", method: "POST", target: "/api/v1/import", origins: []string{ui},
			header: hdr{"Origin": ui, "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
			want:   415, wantReason: "content_type", wantHeader: hdr{"Access-Control-Allow-Origin": ui}},
		{name: "cross-site multipart", method: "POST", target: "/api/v1/import",
			header: hdr{"Origin": evil, "Sec-Fetch-Site": "cross-site", "Content-Type": mpart}, want: 403, wantReason: "csrf"},
		{name: "multipart with Sec-Fetch-Site none", method: "POST", target: "/api/v1/import",
			header: hdr{"Sec-Fetch-Site": "none", "Content-Type": mpart, "Authorization": bWrite}, want: 403, wantReason: "csrf"},
		{name: "multipart from an allowed origin", method: "POST", target: "/api/v1/import", origins: []string{ui},
			header: hdr{"Origin": ui, "Sec-Fetch-Site": "cross-site", "Content-Type": mpart, "Authorization": bWrite},
			want:   403, wantReason: "csrf"},
		{name: "same-origin multipart", method: "POST", target: "/api/v1/import",
			header: hdr{"Origin": own, "Sec-Fetch-Site": "same-origin", "Content-Type": mpart, "Authorization": bWrite},
			want:   200, wantNext: true},
		{name: "own-Origin multipart, old browser", method: "POST", target: "/api/v1/import",
			header: hdr{"Origin": own, "Content-Type": mpart, "Authorization": bWrite}, want: 200, wantNext: true},
		{name: "curl -F multipart", method: "POST", target: "/api/v1/import",
			header: hdr{"Content-Type": mpart, "Authorization": bWrite}, want: 200, wantNext: true},
		{name: "GET cross-origin reaches the token check", target: "/api/v1/traces",
			header: hdr{"Origin": evil, "Sec-Fetch-Site": "cross-site"}, want: 401, wantReason: "token"},
		{name: "GET cross-origin with token", target: "/api/v1/traces",
			header: hdr{"Origin": evil, "Sec-Fetch-Site": "cross-site", "Authorization": bRead}, want: 200, wantNext: true},
		{name: "HEAD cross-origin", method: "HEAD", target: "/healthz",
			header: hdr{"Origin": evil, "Sec-Fetch-Site": "cross-site"}, want: 200, wantNext: true},

		// 2. CORS.
		{name: "preflight from an allowed origin", method: "OPTIONS", target: "/v1/traces", origins: []string{ui + ":443/"},
			header: hdr{"Origin": ui, "Sec-Fetch-Site": "cross-site", "Access-Control-Request-Method": "POST",
				"Access-Control-Request-Headers": "authorization, content-type"},
			want: 204, wantHeader: hdr{"Access-Control-Allow-Origin": ui, "Vary": "Origin",
				"Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding",
				"Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, PATCH, DELETE"}},
		{name: "preflight from another origin", method: "OPTIONS", target: "/v1/traces", origins: []string{ui},
			header: hdr{"Origin": evil, "Access-Control-Request-Method": "POST"},
			want:   403, wantReason: "csrf", wantHeader: hdr{"Vary": "Origin"},
			wantNo: []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods"}},
		{name: "preflight without allowed origins", method: "OPTIONS", target: "/v1/traces",
			header: hdr{"Origin": evil, "Access-Control-Request-Method": "POST"},
			want:   403, wantReason: "csrf", wantNo: []string{"Access-Control-Allow-Origin", "Vary"}},
		{name: "OPTIONS that is no preflight", method: "OPTIONS", target: "/healthz", want: 200, wantNext: true},
		{name: "allowed origin POST", method: "POST", target: "/v1/traces", origins: []string{"HTTPS://UI.example"},
			header: hdr{"Origin": ui, "Sec-Fetch-Site": "cross-site", "Content-Type": jsonCT, "Authorization": bIngest},
			want:   200, wantNext: true, wantHeader: hdr{"Access-Control-Allow-Origin": ui, "Vary": "Origin"}},
		{name: "allowed origin gets CORS headers on 401", target: "/api/v1/traces", origins: []string{ui},
			header: hdr{"Origin": ui, "Sec-Fetch-Site": "cross-site"},
			want:   401, wantReason: "token", wantHeader: hdr{"Access-Control-Allow-Origin": ui}},
		{name: "other origin GET: no ACAO", target: "/healthz", origins: []string{ui},
			header: hdr{"Origin": evil}, want: 200, wantNext: true, wantHeader: hdr{"Vary": "Origin"},
			wantNo: []string{"Access-Control-Allow-Origin"}},
		{name: "no allowed origins: no CORS headers", target: "/healthz",
			header: hdr{"Origin": evil}, want: 200, wantNext: true,
			wantNo: []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Headers", "Vary"}},
		{name: "invalid allowed origins are ignored", method: "POST", target: "/healthz", origins: []string{"*", "null", "ui.example", ui + "/path"},
			header: hdr{"Origin": "null", "Content-Type": jsonCT}, want: 403, wantReason: "csrf", wantNo: []string{"Access-Control-Allow-Origin"}},

		// 4. Tokens.
		{name: "public path needs no token", target: "/healthz", want: 200, wantNext: true},
		{name: "ingest without token", method: "POST", target: "/v1/traces", header: hdr{"Content-Type": proto},
			want: 401, wantReason: "token",
			wantHeader: hdr{"WWW-Authenticate": `Bearer realm="flowscope", scope="ingest"`, "Content-Type": "text/plain; charset=utf-8"}},
		{name: "ingest with wrong token", method: "POST", target: "/v1/traces",
			header: hdr{"Content-Type": proto, "Authorization": "Bearer wrong-token-0123456789"},
			want:   401, wantReason: "token",
			wantHeader: hdr{"WWW-Authenticate": `Bearer realm="flowscope", scope="ingest", error="invalid_token"`}},
		{name: "ingest with the read token", method: "POST", target: "/v1/traces",
			header: hdr{"Content-Type": proto, "Authorization": bRead}, want: 401, wantReason: "token"},
		{name: "Basic is no bearer token", target: "/api/v1/traces", header: hdr{"Authorization": "Basic dXNlcjpwYXNz"},
			want: 401, wantReason: "token", wantHeader: hdr{"WWW-Authenticate": `Bearer realm="flowscope", scope="read"`}},
		{name: "read API without token: JSON", target: "/api/v1/traces",
			want: 401, wantReason: "token", wantHeader: hdr{"Content-Type": "application/json"}},
		{name: "read with read token", target: "/api/v1/traces", header: hdr{"Authorization": bRead}, want: 200, wantNext: true},
		{name: "read with write token", target: "/metrics", header: hdr{"Authorization": bWrite}, want: 200, wantNext: true},
		{name: "read with ingest token", target: "/metrics", header: hdr{"Authorization": bIngest}, want: 401, wantReason: "token"},
		{name: "write with read token", method: "POST", target: "/api/v1/import",
			header: hdr{"Content-Type": jsonCT, "Authorization": bRead}, want: 401, wantReason: "token"},
		{name: "write with write token, lower-case scheme", method: "POST", target: "/api/v1/import",
			header: hdr{"Content-Type": jsonCT, "Authorization": "bearer " + writeTok}, want: 200, wantNext: true},
		{name: "no tokens configured", noTokens: true, target: "/api/v1/traces", want: 200, wantNext: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, target, host, listen := tt.method, tt.target, tt.host, tt.listen
			if method == "" {
				method = "GET"
			}
			if target == "" {
				target = "/healthz"
			}
			switch host {
			case "":
				host = "127.0.0.1:8686"
			case "none":
				host = ""
			}
			if listen == "" {
				listen = "127.0.0.1:8686"
			}
			var logs bytes.Buffer
			var reasons []string
			p := HTTPPolicy{
				Listener: "http", Tokens: tokens, Scope: testScope, ListenAddr: listen,
				AllowedHosts: tt.allowedHosts, AllowedOrigins: tt.origins,
				Logger:   slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				OnRefuse: func(reason string) { reasons = append(reasons, reason) },
			}
			if tt.noTokens {
				p.Tokens = nil
			}
			ran := false
			h := Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ran = true }), p)

			r := httptest.NewRequest(method, target, strings.NewReader("body"))
			r.Host = host
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)

			if w.Code != tt.want {
				t.Errorf("status %d, want %d; body %q", w.Code, tt.want, w.Body)
			}
			if ran != tt.wantNext {
				t.Errorf("next ran: %v, want %v", ran, tt.wantNext)
			}
			if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			for k, v := range tt.wantHeader {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			for _, k := range tt.wantNo {
				if got, ok := w.Header()[k]; ok {
					t.Errorf("unexpected %s: %q", k, got)
				}
			}
			if tt.wantReason == "" && len(reasons) > 0 || tt.wantReason != "" && (len(reasons) != 1 || reasons[0] != tt.wantReason) {
				t.Errorf("OnRefuse reasons %q, want %q", reasons, tt.wantReason)
			}
			for _, secret := range []string{ingestTok, readTok, writeTok} {
				if strings.Contains(w.Body.String(), secret) || strings.Contains(logs.String(), secret) {
					t.Errorf("the body or the log holds a token: %q / %q", w.Body, logs.String())
				}
			}
			if tt.wantReason != "" && !strings.Contains(logs.String(), "reason="+tt.wantReason) {
				t.Errorf("refusal not logged at Debug: %q", logs.String())
			}
		})
	}
}

// TestGuardMessages checks what the refusals tell the client.
func TestGuardMessages(t *testing.T) {
	h := Guard(http.NotFoundHandler(), HTTPPolicy{Listener: "otlp_http", Tokens: testTokens(t), Scope: testScope, ListenAddr: "127.0.0.1:4318"})
	serve := func(method, target, host string, header map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		r.Host = host
		for k, v := range header {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	tests := []struct {
		name        string
		w           *httptest.ResponseRecorder
		contentType string
		want        []string
	}{
		{"host", serve("GET", "/v1/traces", "attacker.example:4318", nil), "text/plain",
			[]string{`"attacker.example:4318"`, "otlp_http", "security.allowed_hosts"}},
		{"csrf", serve("POST", "/v1/traces", "127.0.0.1:4318", map[string]string{"Origin": "https://evil.example"}), "text/plain",
			[]string{`"https://evil.example"`, "security.allowed_origins"}},
		{"content type", serve("POST", "/v1/traces", "127.0.0.1:4318", map[string]string{"Content-Type": "text/plain; charset=utf-8"}), "text/plain",
			[]string{`"text/plain"`}},
		{"token, plain", serve("POST", "/v1/traces", "127.0.0.1:4318", nil), "text/plain",
			[]string{`scope "ingest"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ct := tt.w.Header().Get("Content-Type"); !strings.HasPrefix(ct, tt.contentType) {
				t.Errorf("Content-Type %q", ct)
			}
			for _, s := range tt.want {
				if !strings.Contains(tt.w.Body.String(), s) {
					t.Errorf("body %q does not contain %q", tt.w.Body, s)
				}
			}
		})
	}

	w := serve("GET", "/api/v1/traces", "localhost:4318", map[string]string{"Authorization": "Bearer " + ingestTok})
	var body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("401 body %q: %v", w.Body, err)
	}
	if body.Code != 401 || !strings.Contains(body.Message, `scope "read"`) || strings.Contains(body.Message, ingestTok) {
		t.Errorf("401 body %+v", body)
	}
}

func TestGuardNeedsScope(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Guard with Tokens and no Scope did not panic")
		}
	}()
	Guard(http.NotFoundHandler(), HTTPPolicy{Tokens: testTokens(t)})
}

func TestOwnOrigin(t *testing.T) {
	r := httptest.NewRequest("GET", "https://Flowscope.example:8443/", nil)
	if got := OwnOrigin(r); got != "https://flowscope.example:8443" {
		t.Errorf("OwnOrigin = %q", got)
	}
	r = httptest.NewRequest("GET", "http://127.0.0.1:8686/", nil)
	if got := OwnOrigin(r); got != "http://127.0.0.1:8686" {
		t.Errorf("OwnOrigin = %q", got)
	}
}

// TestGuardServer runs Guard on a real server on 127.0.0.1, where the Host
// header is the one a client sends.
func TestGuardServer(t *testing.T) {
	var mu sync.Mutex
	var reasons []string
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.Handler = Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}), HTTPPolicy{Listener: "http", Tokens: testTokens(t), Scope: testScope,
		ListenAddr: srv.Listener.Addr().String(),
		OnRefuse: func(reason string) {
			mu.Lock()
			defer mu.Unlock()
			reasons = append(reasons, reason)
		}})
	srv.Start()
	defer srv.Close()

	do := func(host, auth string) int {
		req, err := http.NewRequest("GET", srv.URL+"/api/v1/traces", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Error("no nosniff")
		}
		return resp.StatusCode
	}
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	port = ":" + port
	if got := do("", "Bearer "+readTok); got != 200 {
		t.Errorf("own address: %d", got)
	}
	if got := do("localhost"+port, "Bearer "+readTok); got != 200 {
		t.Errorf("localhost: %d", got)
	}
	if got := do("rebound.example"+port, "Bearer "+readTok); got != 421 {
		t.Errorf("rebound name: %d", got)
	}
	if got := do("", ""); got != 401 {
		t.Errorf("no token: %d", got)
	}
	srv.Client().CloseIdleConnections()
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(reasons, ",") != "host,token" {
		t.Errorf("reasons %q", reasons)
	}
}

// BenchmarkGuard measures the ingest hot path: a POST with a valid token
// through Guard to a no-op handler.
func BenchmarkGuard(b *testing.B) {
	tokens := testTokens(b)
	for _, bc := range []struct {
		name    string
		tokens  *Tokens
		listen  string
		origins []string
		header  map[string]string
	}{
		{name: "token", tokens: tokens, listen: "127.0.0.1:4318",
			header: map[string]string{"Content-Type": "application/x-protobuf", "Authorization": "Bearer " + ingestTok}},
		{name: "no_tokens_any_host", listen: "0.0.0.0:4318",
			header: map[string]string{"Content-Type": "application/x-protobuf"}},
		{name: "cors_same_origin", tokens: tokens, listen: "127.0.0.1:4318", origins: []string{"https://ui.example"},
			header: map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + ingestTok,
				"Origin": "http://127.0.0.1:4318", "Sec-Fetch-Site": "same-origin"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := Guard(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), HTTPPolicy{
				Listener: "otlp_http", Tokens: bc.tokens, ListenAddr: bc.listen, AllowedOrigins: bc.origins,
				Scope: func(*http.Request) Scope { return ScopeIngest },
			})
			r := httptest.NewRequest("POST", "/v1/traces", nil)
			r.Host = "127.0.0.1:4318"
			for k, v := range bc.header {
				r.Header.Set(k, v)
			}
			w := &nopWriter{h: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, r)
			}
			if w.status != 0 {
				b.Fatalf("status %d", w.status)
			}
		})
	}
}

// nopWriter is a ResponseWriter that allocates nothing per request.
type nopWriter struct {
	h      http.Header
	status int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(status int)      { w.status = status }
