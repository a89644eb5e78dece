package security

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// HTTPPolicy configures Guard for one HTTP listener.
type HTTPPolicy struct {
	// Listener names the listener in logs and messages, e.g. "http",
	// "otlp_http", "zipkin".
	Listener string
	// Tokens are checked for the scope of each request; nil: no tokens.
	Tokens *Tokens
	// Scope says what a request needs. It must be set when Tokens is.
	Scope func(r *http.Request) Scope
	// ListenAddr is the bound address (host:port). Its host is allowed in
	// Host headers unless it is unspecified (0.0.0.0, ::, empty); when it is
	// a loopback address or name, so are the loopback names localhost,
	// *.localhost, 127.0.0.1 and ::1.
	ListenAddr string
	// AllowedHosts are more names allowed in Host headers (host only; a
	// port is ignored). "*" allows any Host, "*.example.com" any subdomain
	// of example.com. When it is empty and the listener is on an
	// unspecified address, any Host is allowed (the listener cannot know
	// its names). IP addresses are always allowed: DNS rebinding needs a
	// name.
	AllowedHosts []string
	// AllowedOrigins are the origins (scheme://host[:port]) allowed to call
	// cross-origin (CORS). Empty: no CORS headers at all, and cross-origin
	// state-changing requests are refused.
	AllowedOrigins []string
	// Logger receives refusals at Debug level (and configuration warnings);
	// nil discards.
	Logger *slog.Logger
	// OnRefuse, if set, is called for each refused request with the reason:
	// "host", "csrf", "content_type" or "token" (e.g. to count refusals in
	// a metric). It must be safe for concurrent use.
	OnRefuse func(reason string)
}

// The reasons passed to HTTPPolicy.OnRefuse.
const (
	RefusedHost        = "host"
	RefusedCSRF        = "csrf"
	RefusedContentType = "content_type"
	RefusedToken       = "token"
)

// Guard returns next protected by p: the Host check, CORS, the cross-site
// (CSRF) checks and the bearer token, in that order (see the package
// documentation). A refused request never reaches next, and its body is not
// read. Every response gets X-Content-Type-Options: nosniff.
//
// Guard panics when p.Tokens is set but p.Scope is nil.
func Guard(next http.Handler, p HTTPPolicy) http.Handler {
	if p.Tokens != nil && p.Scope == nil {
		panic("security.Guard: HTTPPolicy.Scope is nil but Tokens is set (listener " + p.Listener + ")")
	}
	g := &guard{next: next, p: p, logger: p.Logger}
	if g.logger == nil {
		g.logger = slog.New(slog.DiscardHandler)
	}
	g.listenHost, g.loopback = listenHost(p.ListenAddr)
	g.anyHost = g.listenHost == "" && len(p.AllowedHosts) == 0
	for _, h := range p.AllowedHosts {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
		case h == "*":
			g.anyHost = true
		case strings.HasPrefix(h, "*."):
			g.suffixes = append(g.suffixes, hostOf(h[1:]))
		default:
			g.hosts = append(g.hosts, hostOf(h))
		}
	}
	for _, o := range p.AllowedOrigins {
		if n, ok := normalizeOrigin(o); ok {
			g.origins = append(g.origins, n)
		} else {
			g.logger.Warn("ignoring an allowed origin that is not scheme://host[:port]",
				"listener", p.Listener, "origin", o)
		}
	}
	return g
}

type guard struct {
	next       http.Handler
	p          HTTPPolicy
	logger     *slog.Logger
	listenHost string // the listen address's host, "" when unspecified
	loopback   bool   // the listener is on a loopback address or name
	anyHost    bool
	hosts      []string // allowed names
	suffixes   []string // allowed domain suffixes, with their leading dot
	origins    []string // allowed origins, normalized
}

// nosniff is shared by all responses to avoid an allocation per request;
// its capacity of 1 makes an append by a handler copy it.
var nosniff = []string{"nosniff"}[:1:1]

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["X-Content-Type-Options"] = nosniff

	// 1. Host (DNS rebinding).
	if !g.hostAllowed(r.Host) {
		g.refuse(w, r, http.StatusMisdirectedRequest, RefusedHost, fmt.Sprintf(
			"misdirected request: Host %q is not a name of this server's %s listener; "+
				"if it is one, add it to security.allowed_hosts", r.Host, g.p.Listener))
		return
	}

	// 2. CORS.
	origin := r.Header.Get("Origin")
	allowedOrigin := origin != "" && g.originAllowed(origin)
	if len(g.origins) > 0 {
		h.Add("Vary", "Origin")
		if allowedOrigin {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Content-Encoding")
		}
	}
	if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		if !allowedOrigin {
			g.refuse(w, r, http.StatusForbidden, RefusedCSRF, fmt.Sprintf(
				"cross-origin request from origin %q refused; to allow it, add the origin to security.allowed_origins", origin))
			return
		}
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	}

	// 3. Cross-site requests that change state (CSRF).
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions {
		if !g.crossSiteOK(w, r, origin, allowedOrigin) {
			return
		}
	}

	// 4. Token.
	if t := g.p.Tokens; t != nil {
		if s := g.p.Scope(r); t.Required(s) {
			presented := BearerToken(r.Header.Get("Authorization"))
			if !t.Allows(s, presented) {
				g.refuseToken(w, r, s, presented != "")
				return
			}
		}
	}
	g.next.ServeHTTP(w, r)
}

// crossSiteOK applies step 3 to a state-changing request, answering it and
// returning false when refused.
func (g *guard) crossSiteOK(w http.ResponseWriter, r *http.Request, origin string, allowedOrigin bool) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	// Sec-Fetch-Site, when sent, is the browser's own verdict and decides
	// (it is right behind proxies that rewrite Host); Origin is the
	// fallback of browsers without it.
	var foreign bool
	switch site {
	case "":
		foreign = origin != "" && !sameHost(origin, r.Host) && !allowedOrigin
	case "same-origin", "none":
	default:
		foreign = !allowedOrigin
	}
	if foreign {
		g.refuse(w, r, http.StatusForbidden, RefusedCSRF, fmt.Sprintf(
			"cross-site %s from origin %q (Sec-Fetch-Site: %q) refused; "+
				"to allow that origin, add it to security.allowed_origins", r.Method, origin, site))
		return false
	}
	switch mt := mediaType(r.Header.Get("Content-Type")); {
	case strings.EqualFold(mt, "text/plain"), strings.EqualFold(mt, "application/x-www-form-urlencoded"):
		g.refuse(w, r, http.StatusUnsupportedMediaType, RefusedContentType, fmt.Sprintf(
			"content type %q is not accepted (browsers send it cross-site without asking); "+
				"send the body with its own type, e.g. application/json or application/x-protobuf", mt))
		return false
	case strings.EqualFold(mt, "multipart/form-data"):
		// A browser's form upload is accepted from the server's own pages
		// only; a client that is no browser (no Origin, no Sec-Fetch-Site,
		// e.g. curl -F) may upload.
		browser := site != "" || origin != ""
		ownPage := site == "same-origin" || (site == "" && origin != "" && sameHost(origin, r.Host))
		if browser && !ownPage {
			g.refuse(w, r, http.StatusForbidden, RefusedCSRF, fmt.Sprintf(
				"multipart/form-data upload from origin %q refused: browsers may upload only from this server's own pages", origin))
			return false
		}
	}
	return true
}

func (g *guard) refuseToken(w http.ResponseWriter, r *http.Request, s Scope, presented bool) {
	var msg, challenge string
	if presented {
		msg = fmt.Sprintf("the bearer token does not grant scope %q", s.String())
		challenge = fmt.Sprintf(`Bearer realm="flowscope", scope=%q, error="invalid_token"`, s.String())
	} else {
		msg = fmt.Sprintf("a bearer token with scope %q is required (Authorization: Bearer <token>)", s.String())
		challenge = fmt.Sprintf(`Bearer realm="flowscope", scope=%q`, s.String())
	}
	g.noteRefusal(r, RefusedToken, msg)
	h := w.Header()
	h.Set("WWW-Authenticate", challenge)
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		http.Error(w, msg, http.StatusUnauthorized)
		return
	}
	body, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{http.StatusUnauthorized, msg})
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write(append(body, '\n'))
}

// refuse answers a refused request with a plain-text message.
func (g *guard) refuse(w http.ResponseWriter, r *http.Request, status int, reason, msg string) {
	g.noteRefusal(r, reason, msg)
	http.Error(w, msg, status)
}

func (g *guard) noteRefusal(r *http.Request, reason, msg string) {
	if g.p.OnRefuse != nil {
		g.p.OnRefuse(reason)
	}
	ctx := r.Context()
	if g.logger.Enabled(ctx, slog.LevelDebug) {
		g.logger.LogAttrs(context.WithoutCancel(ctx), slog.LevelDebug, "request refused",
			slog.String("listener", g.p.Listener), slog.String("reason", reason),
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("host", r.Host), slog.String("origin", r.Header.Get("Origin")),
			slog.String("remote", r.RemoteAddr), slog.String("message", msg))
	}
}

func (g *guard) hostAllowed(hostHeader string) bool {
	if g.anyHost {
		return true
	}
	host := hostOf(hostHeader)
	switch {
	case host == "":
		return false
	case host == g.listenHost:
		return true
	case g.loopback && isLoopbackName(host):
		return true
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	for _, h := range g.hosts {
		if host == h {
			return true
		}
	}
	for _, s := range g.suffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

func (g *guard) originAllowed(origin string) bool {
	for _, o := range g.origins {
		if strings.EqualFold(origin, o) {
			return true
		}
	}
	return false
}

// OwnOrigin returns the origin a browser gives the server's own pages as r
// reached it: "https" when r came over TLS, else "http", and r's Host.
// Behind a proxy that terminates TLS or rewrites Host, it is not the origin
// the browser saw.
func OwnOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + strings.ToLower(r.Host)
}

// sameHost reports whether origin (scheme://host[:port]) has the host and
// port of the Host header. The scheme is not compared (as in
// net/http.CrossOriginProtection): behind a proxy that terminates TLS the
// server cannot know it.
func sameHost(origin, host string) bool {
	i := strings.Index(origin, "://")
	return i >= 0 && host != "" && strings.EqualFold(origin[i+len("://"):], host)
}

// hostOf returns the host of a Host header or host[:port]: without the
// port and IPv6 brackets, in lower case, without a trailing dot.
func hostOf(hostport string) string {
	h := hostport
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[1:i]
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i+1:], ':') < 0 {
		h = h[:i] // host:port; more than one colon is a bare IPv6 address
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

func isLoopbackName(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// listenHost returns the host of a listen address ("" when unspecified) and
// whether it is a loopback address or name.
func listenHost(addr string) (host string, loopback bool) {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		h = addr
	}
	h = hostOf(h)
	if a, err := netip.ParseAddr(h); err == nil && a.IsUnspecified() {
		return "", false
	}
	return h, h != "" && isLoopbackName(h)
}

// normalizeOrigin returns o as a browser sends it in Origin: lower case,
// without a default port or trailing slash.
func normalizeOrigin(o string) (string, bool) {
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSpace(o), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", false
	}
	host := strings.ToLower(u.Host)
	if p := u.Port(); (u.Scheme == "http" && p == "80") || (u.Scheme == "https" && p == "443") {
		host = strings.TrimSuffix(host, ":"+p)
	}
	return strings.ToLower(u.Scheme) + "://" + host, true
}

// mediaType returns the media type of a Content-Type value, without
// parameters and surrounding spaces.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.TrimSpace(ct)
}
