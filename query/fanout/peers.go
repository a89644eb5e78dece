package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PeerSet is the list of peers of a front end: static URLs, the lines of
// a peers file, and the addresses DNS names resolve to, kept current by
// Refresh (on a timer and on SIGHUP). It is safe for concurrent use.
//
// A peer is written as
//
//	http://host:port or https://host:port   one node
//	dns+host:port                           every A/AAAA address of host (a headless service)
//	dnssrv+_http._tcp.name                  every SRV target of the name, with its port
//
// and the dns forms may carry a scheme: dns+https://host:port.
type PeerSet struct {
	specs    []string
	file     string
	resolver *net.Resolver
	logger   *slog.Logger

	mu      sync.RWMutex
	current []string
	// last holds what each specification resolved to last time.
	last map[string][]string
}

// PeerSetOptions configures NewPeerSet.
type PeerSetOptions struct {
	// Peers are peer specifications (see PeerSet).
	Peers []string
	// File, when set, holds more specifications, one per line (# starts a
	// comment); it is reread by Refresh.
	File string
	// Resolver resolves the dns forms; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// Logger logs changes of the set; nil discards.
	Logger *slog.Logger
}

// NewPeerSet checks the specifications and resolves them once. A bad
// specification or an unreadable file is an error; a DNS name that does not
// resolve yet is not (it is retried by Refresh).
func NewPeerSet(ctx context.Context, o PeerSetOptions) (*PeerSet, error) {
	for _, s := range o.Peers {
		if _, err := parseSpec(s); err != nil {
			return nil, err
		}
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ps := &PeerSet{specs: o.Peers, file: o.File, resolver: o.Resolver, logger: o.Logger}
	if err := ps.Refresh(ctx); err != nil {
		var fe *fileError
		if errors.As(err, &fe) || len(ps.Current()) == 0 && len(o.Peers) == 0 && o.File == "" {
			return nil, err
		}
		o.Logger.Warn("peers not all resolved", "err", err)
	}
	return ps, nil
}

// Current returns the peer URLs, sorted.
func (ps *PeerSet) Current() []string {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return ps.current
}

type fileError struct{ err error }

func (e *fileError) Error() string { return e.err.Error() }
func (e *fileError) Unwrap() error { return e.err }

// Refresh rereads the peers file and resolves the DNS names again. On an
// error (an unreadable or invalid file) the set is left as it was; a
// name that does not resolve keeps the addresses it had.
func (ps *PeerSet) Refresh(ctx context.Context) error {
	specs := slices.Clone(ps.specs)
	if ps.file != "" {
		more, err := readPeersFile(ps.file)
		if err != nil {
			return &fileError{err}
		}
		specs = append(specs, more...)
	}
	ps.mu.RLock()
	last := ps.last
	ps.mu.RUnlock()
	var urls []string
	var errs []error
	resolved := make(map[string][]string, len(specs))
	for _, s := range specs {
		sp, _ := parseSpec(s) // checked when read
		got, err := sp.resolve(ctx, ps.resolver)
		if err != nil {
			errs = append(errs, err)
			got = last[s]
		}
		resolved[s] = got
		urls = append(urls, got...)
	}
	slices.Sort(urls)
	urls = slices.Compact(urls)
	ps.mu.Lock()
	changed := !slices.Equal(ps.current, urls)
	ps.current, ps.last = urls, resolved
	ps.mu.Unlock()
	if changed {
		ps.logger.Info("peers", "peers", strings.Join(urls, ","))
	}
	return errors.Join(errs...)
}

// Run refreshes the set every interval until ctx ends.
func (ps *PeerSet) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := ps.Refresh(ctx); err != nil && ctx.Err() == nil {
				ps.logger.Warn("refresh peers", "err", err)
			}
		}
	}
}

func readPeersFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("peers file: %w", err)
	}
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if _, err := parseSpec(line); err != nil {
			return nil, fmt.Errorf("peers file %s:%d: %w", path, i+1, err)
		}
		out = append(out, line)
	}
	return out, nil
}

// spec is one parsed peer specification.
type spec struct {
	kind   string // "url", "dns" or "dnssrv"
	scheme string
	host   string
	port   string
	raw    string
}

// parseSpec parses a peer specification (see PeerSet).
func parseSpec(s string) (spec, error) {
	sp := spec{raw: s, scheme: "http"}
	rest := s
	switch {
	case strings.HasPrefix(s, "dnssrv+"):
		sp.kind, rest = "dnssrv", strings.TrimPrefix(s, "dnssrv+")
	case strings.HasPrefix(s, "dns+"):
		sp.kind, rest = "dns", strings.TrimPrefix(s, "dns+")
	default:
		sp.kind = "url"
	}
	if i := strings.Index(rest, "://"); i >= 0 {
		sp.scheme, rest = rest[:i], rest[i+3:]
	} else if sp.kind == "url" {
		return sp, fmt.Errorf("peer %q: want http://host:port, https://host:port, dns+host:port or dnssrv+name", s)
	}
	if sp.scheme != "http" && sp.scheme != "https" {
		return sp, fmt.Errorf("peer %q: scheme %q: want http or https", s, sp.scheme)
	}
	rest = strings.TrimSuffix(rest, "/")
	if sp.kind == "dnssrv" {
		if rest == "" || strings.ContainsAny(rest, ":/") {
			return sp, fmt.Errorf("peer %q: want dnssrv+ followed by a DNS name (e.g. _http._tcp.flowscope.svc)", s)
		}
		sp.host = rest
		return sp, nil
	}
	u, err := url.Parse(sp.scheme + "://" + rest)
	if err != nil || u.Host != rest || u.Hostname() == "" {
		return sp, fmt.Errorf("peer %q: want host:port after the scheme, nothing else", s)
	}
	sp.host, sp.port = u.Hostname(), u.Port()
	if sp.port == "" {
		return sp, fmt.Errorf("peer %q: missing port", s)
	}
	if n, err := strconv.Atoi(sp.port); err != nil || n < 1 || n > 65535 {
		return sp, fmt.Errorf("peer %q: port %q out of range", s, sp.port)
	}
	return sp, nil
}

func (sp spec) url(host, port string) string {
	return sp.scheme + "://" + net.JoinHostPort(host, port)
}

// resolve returns the peer URLs of sp.
func (sp spec) resolve(ctx context.Context, r *net.Resolver) ([]string, error) {
	switch sp.kind {
	case "url":
		return []string{sp.url(sp.host, sp.port)}, nil
	case "dns":
		addrs, err := r.LookupHost(ctx, sp.host)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", sp.raw, err)
		}
		out := make([]string, 0, len(addrs))
		for _, a := range addrs {
			out = append(out, sp.url(a, sp.port))
		}
		return out, nil
	default:
		_, srvs, err := r.LookupSRV(ctx, "", "", sp.host)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", sp.raw, err)
		}
		out := make([]string, 0, len(srvs))
		for _, s := range srvs {
			out = append(out, sp.url(strings.TrimSuffix(s.Target, "."), strconv.Itoa(int(s.Port))))
		}
		return out, nil
	}
}

// ParsePeer checks a peer specification (see PeerSet).
func ParsePeer(s string) error {
	_, err := parseSpec(s)
	return err
}
