package fanout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/flowscope/flowscope/query"
)

// ErrPeersUnavailable is wrapped by the errors of a query no peer could
// answer, and by the errors of a Strict query with a missing peer. It
// wraps query.ErrUnavailable: the query API answers them Unavailable
// (HTTP 503).
var ErrPeersUnavailable = fmt.Errorf("peers %w", query.ErrUnavailable)

// Tracker collects the peers a request's answer is missing. It is safe for
// concurrent use; the zero value is not (use WithTracker).
type Tracker struct {
	mu      sync.Mutex
	missing map[string]bool
	strict  bool
}

type trackerKey struct{}

// WithTracker returns ctx carrying a new Tracker, and the Tracker. A ctx
// that already carries one is returned with it, so that nested calls
// report to the outermost request.
func WithTracker(ctx context.Context) (context.Context, *Tracker) {
	if t, ok := ctx.Value(trackerKey{}).(*Tracker); ok {
		return ctx, t
	}
	t := &Tracker{missing: map[string]bool{}}
	return context.WithValue(ctx, trackerKey{}, t), t
}

// Strict returns ctx whose queries fail (wrapping ErrPeersUnavailable)
// when any peer does not answer, instead of answering from the others:
// for evaluations that must not act on a partial view, such as alert
// rules, which would otherwise resolve (or fire) on a node's absence.
func Strict(ctx context.Context) context.Context {
	return context.WithValue(ctx, trackerKey{}, &Tracker{missing: map[string]bool{}, strict: true})
}

func trackerFrom(ctx context.Context) *Tracker {
	t, _ := ctx.Value(trackerKey{}).(*Tracker)
	return t
}

// add records that peer did not answer.
func (t *Tracker) add(peer string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.missing[peer] = true
}

// Missing returns the peers that did not answer, sorted; nil for a
// complete answer.
func (t *Tracker) Missing() []string {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.missing) == 0 {
		return nil
	}
	out := make([]string, 0, len(t.missing))
	for p := range t.missing {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Names of the partial-answer markers.
const (
	// HeaderPartial is the HTTP response header set to "true" on a
	// partial answer.
	HeaderPartial = "Flowscope-Partial"
	// HeaderMissingPeers lists the missing peers, comma-separated.
	HeaderMissingPeers = "Flowscope-Missing-Peers"
	// MetadataPartial and MetadataMissingPeers are the gRPC header
	// metadata keys of the same.
	MetadataPartial      = "flowscope-partial"
	MetadataMissingPeers = "flowscope-missing-peers"
)

// Middleware gives every request to h a Tracker and marks partial
// answers: the headers HeaderPartial and HeaderMissingPeers, and, in a
// JSON object body, the members "partial": true and "missingPeers": [...]
// (added at the end of the object). Complete answers pass through
// untouched and unbuffered.
func Middleware(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, t := WithTracker(r.Context())
		pw := &partialWriter{ResponseWriter: w, t: t}
		h.ServeHTTP(pw, r.WithContext(ctx))
		pw.finish()
	})
}

// partialWriter decides at WriteHeader whether the answer is partial;
// a partial JSON body is held until the handler returns, then rewritten.
type partialWriter struct {
	http.ResponseWriter
	t       *Tracker
	decided bool
	missing []string
	hold    bool
	status  int
	buf     bytes.Buffer
}

func (pw *partialWriter) WriteHeader(status int) {
	if pw.decided {
		return
	}
	pw.decided = true
	pw.missing = pw.t.Missing()
	if len(pw.missing) == 0 {
		pw.ResponseWriter.WriteHeader(status)
		return
	}
	h := pw.Header()
	h.Set(HeaderPartial, "true")
	h.Set(HeaderMissingPeers, strings.Join(pw.missing, ","))
	if strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		pw.hold, pw.status = true, status
		h.Del("Content-Length")
		return
	}
	pw.ResponseWriter.WriteHeader(status)
}

func (pw *partialWriter) Write(b []byte) (int, error) {
	if !pw.decided {
		pw.WriteHeader(http.StatusOK)
	}
	if pw.hold {
		return pw.buf.Write(b)
	}
	return pw.ResponseWriter.Write(b)
}

// Flush implements http.Flusher for streaming handlers (not while a
// partial body is held).
func (pw *partialWriter) Flush() {
	if pw.hold {
		return
	}
	if f, ok := pw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// finish writes a held body with the partial members added.
func (pw *partialWriter) finish() {
	if !pw.hold {
		return
	}
	body := markJSON(pw.buf.Bytes(), pw.missing)
	pw.Header().Set("Content-Length", strconv.Itoa(len(body)))
	pw.ResponseWriter.WriteHeader(pw.status)
	pw.ResponseWriter.Write(body)
}

// markJSON adds "partial" and "missingPeers" to the JSON object body;
// a body that is not an object is returned as it is (the headers still
// say it is partial).
func markJSON(body []byte, missing []string) []byte {
	trimmed := bytes.TrimRight(body, " \t\r\n")
	if len(trimmed) < 2 || trimmed[len(trimmed)-1] != '}' || !json.Valid(trimmed) || bytes.TrimLeft(trimmed, " \t\r\n")[0] != '{' {
		return body
	}
	peers, _ := json.Marshal(missing)
	out := make([]byte, 0, len(trimmed)+len(peers)+40)
	out = append(out, trimmed[:len(trimmed)-1]...)
	if !bytes.HasSuffix(bytes.TrimRight(out, " \t\r\n"), []byte("{")) {
		out = append(out, ',')
	}
	out = append(out, `"partial":true,"missingPeers":`...)
	out = append(out, peers...)
	out = append(out, '}')
	if len(body) > len(trimmed) {
		out = append(out, '\n')
	}
	return out
}

// UnaryInterceptor gives every unary gRPC call a Tracker and sends the
// missing peers of a partial answer as header metadata.
func UnaryInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, t := WithTracker(ctx)
	resp, err := handler(ctx, req)
	if missing := t.Missing(); len(missing) > 0 {
		if herr := grpc.SetHeader(ctx, metadata.Pairs(MetadataPartial, "true", MetadataMissingPeers, strings.Join(missing, ","))); herr != nil && err == nil {
			return nil, fmt.Errorf("mark partial answer: %w", herr)
		}
	}
	return resp, err
}
