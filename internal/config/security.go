package config

import (
	"net"
	"net/url"
	"os"
	"strings"
)

// validateSecurity reports the invalid security settings through bad.
func (c Config) validateSecurity(bad func(key string, value any, format string, args ...any)) {
	s := c.Security
	t := s.TLS
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		bad("security.tls.cert_file", t.CertFile, "needs security.tls.key_file with it, and the other way round")
	case t.ClientCAFile != "" && t.CertFile == "":
		bad("security.tls.client_ca_file", t.ClientCAFile, "needs security.tls.cert_file and key_file: client certificates are verified over TLS")
	}
	for _, f := range []struct{ key, path string }{
		{"security.tls.cert_file", t.CertFile}, {"security.tls.key_file", t.KeyFile}, {"security.tls.client_ca_file", t.ClientCAFile},
		{"security.ingest_token_file", s.IngestTokenFile}, {"security.read_token_file", s.ReadTokenFile}, {"security.write_token_file", s.WriteTokenFile},
	} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil || st.IsDir() {
			bad(f.key, f.path, "must be an existing file")
		}
	}
	for _, tk := range []struct{ key, file, value, env string }{
		{"security.ingest_token_file", s.IngestTokenFile, s.IngestToken, TokenEnv.Ingest},
		{"security.read_token_file", s.ReadTokenFile, s.ReadToken, TokenEnv.Read},
		{"security.write_token_file", s.WriteTokenFile, s.WriteToken, TokenEnv.Write},
	} {
		if tk.file != "" && tk.value != "" {
			bad(tk.key, tk.file, "and %s are both set: give the token one way", tk.env)
		}
	}
	for _, h := range s.AllowedHosts {
		if h != "*" && !hostName(h) {
			bad("security.allowed_hosts", s.AllowedHosts, "entry %q must be a host name or IP address without a scheme or port, or *", h)
		}
	}
	for _, o := range s.CORSAllowedOrigins {
		if !origin(o) {
			bad("security.cors_allowed_origins", s.CORSAllowedOrigins, "entry %q must be an origin: scheme://host[:port], without a path", o)
		}
	}
}

// hostName reports whether s is a DNS name or an IP address (IPv6 without
// brackets).
func hostName(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				return false
			}
		}
	}
	return true
}

// origin reports whether s is a web origin: http or https, a host, an
// optional port, and nothing else.
func origin(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && hostName(strings.Trim(u.Hostname(), "[]")) &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil
}
