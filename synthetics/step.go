package synthetics

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowscope/flowscope/store"
	"github.com/flowscope/flowscope/synthetics/checks"
)

// Limits of a step's response.
const (
	// maxBody is the most of a response body read.
	maxBody = 1 << 20
	// maxSnippet is the most of the body stored with a failed step.
	maxSnippet = 1024
	// snippetScan is how much of the body is masked before the snippet is
	// cut from it, so that no secret is cut in half.
	snippetScan = 64 << 10
)

// Headers the prober sets on every request.
const (
	userAgent  = "flowscope-synthetics/1"
	traceState = "flowscope=synthetic"
	// baggageKey is the W3C baggage member carrying the correlation ID.
	baggageKey = "correlation.id"
)

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// step runs step s and records its span in sp.
func (a *attempt) step(ctx context.Context, s *checks.Step, sp *stepSpan) store.SyntheticStep {
	out := store.SyntheticStep{Name: s.Name, Method: method(s), ContinueOnFailure: s.ContinueOnFailure}
	sp.ran, sp.id = true, newSpanID()
	out.SpanID = hex.EncodeToString(sp.id[:])
	sp.start = a.now()
	defer func() { sp.end = a.now() }()

	req, err := a.request(ctx, s, &out, sp)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	remaining := time.Until(deadline(ctx))
	if remaining <= 0 {
		out.Error = fmt.Sprintf("run timeout of %v reached before the step started", a.c.Timeout)
		return out
	}
	limit, own := remaining, false
	if s.Timeout > 0 && s.Timeout < remaining {
		limit, own = s.Timeout, true
	}
	sctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	describe := func(what string, err error) string {
		switch {
		case errors.Is(sctx.Err(), context.DeadlineExceeded) && own:
			return fmt.Sprintf("%s: timeout after %v", what, s.Timeout)
		case errors.Is(sctx.Err(), context.DeadlineExceeded):
			return fmt.Sprintf("%s: run timeout of %v reached", what, a.c.Timeout)
		case sctx.Err() != nil:
			return what + ": canceled"
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the method and URL
		}
		return what + ": " + err.Error()
	}

	var tm phaseTimer
	req = req.WithContext(withTrace(sctx, &tm))
	begin := time.Now()
	sp.start = a.now()
	resp, err := a.p.client.Do(req)
	if err != nil {
		out.Timings = tm.timings(begin, time.Now())
		out.Error = describe("request", err)
		a.evaluate(s, nil, &out)
		return out
	}
	out.Status = resp.StatusCode
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodyPool.Put(buf)
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	end := time.Now()
	out.Timings = tm.timings(begin, end)
	if err != nil {
		out.Error = describe("read body", err)
		a.evaluate(s, nil, &out)
	} else {
		a.evaluate(s, &response{status: resp.StatusCode, header: resp.Header, body: buf.Bytes(), latency: out.Timings.Total}, &out)
	}
	if !out.OK && buf.Len() > 0 {
		out.Body = clip(a.mask.clean(string(buf.Bytes()[:min(buf.Len(), snippetScan)])), maxSnippet)
	}
	return out
}

// deadline returns ctx's deadline (the run's always has one).
func deadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(checks.DefaultTimeout)
	}
	return d
}

// request builds step s's request, recording its URL in out and the server
// in sp.
func (a *attempt) request(ctx context.Context, s *checks.Step, out *store.SyntheticStep, sp *stepSpan) (*http.Request, error) {
	raw, err := a.expand("url", s.Request.URL)
	if err != nil {
		out.URL = a.partial(s.Request.URL)
		return nil, err
	}
	out.URL = raw
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("url: %q is not an http or https URL with a host", raw)
	}
	sp.host, sp.port = u.Hostname(), port(u)
	var body io.Reader
	if !s.Request.Body.IsZero() {
		b, err := a.expand("body", s.Request.Body)
		if err != nil {
			return nil, err
		}
		body = strings.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, out.Method, raw, body)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	for _, h := range s.Request.Headers {
		v, err := a.expand("header "+h.Name, h.Value)
		if err != nil {
			return nil, err
		}
		if h.Name == "Host" {
			req.Host = v
			continue
		}
		req.Header.Add(h.Name, v)
	}
	a.propagate(req.Header, sp.id)
	return req, nil
}

// propagate sets the trace context, the correlation ID and the user agent
// on a step's request headers h.
func (a *attempt) propagate(h http.Header, span [8]byte) {
	var tp [55]byte
	copy(tp[:], "00-")
	hex.Encode(tp[3:35], a.traceID[:])
	tp[35] = '-'
	hex.Encode(tp[36:52], span[:])
	copy(tp[52:], "-01")
	h.Set("Traceparent", string(tp[:]))
	h.Set("Tracestate", mergeList(traceState, "flowscope", h.Values("Tracestate")))
	h.Set(a.p.corrHdr, a.corr)
	h.Set("Baggage", mergeList(baggageKey+"="+a.corr, baggageKey, h.Values("Baggage")))
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", userAgent)
	}
}

// mergeList returns the list header (tracestate, baggage) with first as
// its first member, followed by the members of values whose key is not
// key.
func mergeList(first, key string, values []string) string {
	if len(values) == 0 {
		return first
	}
	var b strings.Builder
	b.WriteString(first)
	for _, v := range values {
		for m := range strings.SplitSeq(v, ",") {
			m = strings.TrimSpace(m)
			k, _, _ := strings.Cut(m, "=")
			if m == "" || strings.TrimSpace(k) == key {
				continue
			}
			b.WriteByte(',')
			b.WriteString(m)
		}
	}
	return b.String()
}

// port returns u's port, or its scheme's default.
func port(u *url.URL) int {
	if p, err := strconv.Atoi(u.Port()); err == nil {
		return p
	}
	if u.Scheme == "https" {
		return 443
	}
	return 80
}
