package security

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
)

// Scope is what a request does, and what a token allows.
type Scope int

// The scopes, from least to most sensitive.
const (
	ScopeNone   Scope = iota // public: no token needed (health probes, the UI's static files, GET /api/v1/security)
	ScopeIngest              // sending telemetry (OTLP, Zipkin)
	ScopeRead                // reading the API, /metrics
	ScopeWrite               // import, reloads, running a synthetic check now
)

// String returns "none", "ingest", "read" or "write".
func (s Scope) String() string {
	switch s {
	case ScopeNone:
		return "none"
	case ScopeIngest:
		return "ingest"
	case ScopeRead:
		return "read"
	case ScopeWrite:
		return "write"
	}
	return fmt.Sprintf("Scope(%d)", int(s))
}

// Token length limits, in bytes: shorter tokens are guessable, longer ones
// are refused without hashing them (a bound on the work per request).
const (
	minTokenLen = 16
	maxTokenLen = 4096
)

// TokenSource says where one scope's token comes from: a file (its content,
// trimmed of surrounding whitespace and newlines) or a value (typically from
// the environment). At most one of File and Value may be set; neither means
// the scope needs no token.
type TokenSource struct{ File, Value string }

// TokenSources gives the token source of each scope that can have a token.
type TokenSources struct{ Ingest, Read, Write TokenSource }

// Tokens holds the configured tokens as SHA-256 digests. Its methods are
// safe for concurrent use, and a nil *Tokens configures no tokens.
type Tokens struct {
	src      TokenSources
	reloadMu sync.Mutex // serializes Reload
	cur      atomic.Pointer[tokenSet]
}

// tokenSet is one loaded generation of tokens, indexed by scope-1.
type tokenSet struct {
	set [3]bool
	sum [3][sha256.Size]byte
}

// LoadTokens reads the tokens of src. Its errors name the scope and the
// file, never the token.
func LoadTokens(src TokenSources) (*Tokens, error) {
	t := &Tokens{src: src}
	ts, err := t.load()
	if err != nil {
		return nil, err
	}
	t.cur.Store(ts)
	return t, nil
}

// Reload rereads the token files (values stay as loaded). If any file fails,
// Reload returns the error and the previous tokens stay in force.
func (t *Tokens) Reload() error {
	if t == nil {
		return nil
	}
	t.reloadMu.Lock()
	defer t.reloadMu.Unlock()
	ts, err := t.load()
	if err != nil {
		return err
	}
	t.cur.Store(ts)
	return nil
}

func (t *Tokens) load() (*tokenSet, error) {
	ts := new(tokenSet)
	for i, src := range [3]TokenSource{t.src.Ingest, t.src.Read, t.src.Write} {
		scope := Scope(i + 1)
		tok, err := readToken(scope, src)
		if err != nil {
			return nil, err
		}
		if tok != "" {
			ts.set[i] = true
			ts.sum[i] = sha256.Sum256([]byte(tok))
		}
	}
	return ts, nil
}

// readToken returns the token of src ("" when none is configured).
func readToken(scope Scope, src TokenSource) (string, error) {
	var tok, from string
	switch {
	case src.File != "" && src.Value != "":
		return "", fmt.Errorf("security: %s token: both a file (%s) and a value are set; set one", scope, src.File)
	case src.File != "":
		b, err := os.ReadFile(src.File)
		if err != nil {
			// The *PathError names the file; its text never holds the content.
			return "", fmt.Errorf("security: %s token: %w", scope, err)
		}
		tok, from = strings.TrimSpace(string(b)), "file "+src.File
	case src.Value != "":
		tok, from = strings.TrimSpace(src.Value), "value"
	default:
		return "", nil
	}
	if err := checkToken(tok); err != nil {
		return "", fmt.Errorf("security: %s token (%s): %w", scope, from, err)
	}
	return tok, nil
}

func checkToken(tok string) error {
	switch {
	case tok == "":
		return errors.New("empty")
	case len(tok) < minTokenLen:
		return fmt.Errorf("shorter than %d bytes", minTokenLen)
	case len(tok) > maxTokenLen:
		return fmt.Errorf("longer than %d bytes", maxTokenLen)
	case strings.ContainsFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return errors.New("contains whitespace or control characters")
	}
	return nil
}

// Required reports whether s needs a token (false for ScopeNone): one is
// configured for it, or, for ScopeWrite, a read token is (see Allows).
func (t *Tokens) Required(s Scope) bool {
	if t == nil || s < ScopeIngest || s > ScopeWrite {
		return false
	}
	ts := t.cur.Load()
	if s == ScopeWrite {
		// Without a write token, writes are as closed as reads.
		return ts.set[ScopeWrite-1] || ts.set[ScopeRead-1]
	}
	return ts.set[s-1]
}

// Allows reports whether presented (the raw bearer token) grants s. It is
// true when s needs no token. The write token also grants read (it is the
// operator's token); the ingest and read tokens grant only their own scope,
// except that without a write token the read token is needed to write (a
// collector whose data is closed does not leave its imports and reloads
// open).
// An unknown scope is never allowed.
func (t *Tokens) Allows(s Scope, presented string) bool {
	if s < ScopeNone || s > ScopeWrite {
		return false
	}
	if !t.Required(s) {
		return true
	}
	if presented == "" || len(presented) > maxTokenLen {
		return false
	}
	ts := t.cur.Load()
	d := sha256.Sum256([]byte(presented))
	var ok int
	switch {
	case s == ScopeRead:
		ok = ts.match(ScopeRead, &d) | ts.match(ScopeWrite, &d)
	case s == ScopeWrite && !ts.set[ScopeWrite-1]:
		ok = ts.match(ScopeRead, &d) // no write token: the read token writes
	default:
		ok = ts.match(s, &d)
	}
	return ok == 1
}

// match returns 1 when d is the digest of s's token, else 0.
func (ts *tokenSet) match(s Scope, d *[sha256.Size]byte) int {
	if !ts.set[s-1] {
		return 0
	}
	return subtle.ConstantTimeCompare(d[:], ts.sum[s-1][:])
}

// Configured reports which scopes have a token.
func (t *Tokens) Configured() (ingest, read, write bool) {
	return t.Required(ScopeIngest), t.Required(ScopeRead), t.Required(ScopeWrite)
}

// BearerToken returns the token of an "Authorization: Bearer X" header value,
// or "" when the value is absent, uses another scheme (the scheme is matched
// case-insensitively) or does not hold exactly one token.
func BearerToken(authorization string) string {
	const scheme = "Bearer"
	a := strings.Trim(authorization, " \t")
	if len(a) <= len(scheme) || !strings.EqualFold(a[:len(scheme)], scheme) ||
		(a[len(scheme)] != ' ' && a[len(scheme)] != '\t') {
		return ""
	}
	tok := strings.TrimLeft(a[len(scheme):], " \t")
	if strings.ContainsAny(tok, " \t\r\n") {
		return ""
	}
	return tok
}
