package zipkinapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/store"
)

// Defaults of Options.
const (
	// DefaultLookback is the lookback of /api/v2/traces and
	// /api/v2/dependencies requests without one (Zipkin's QUERY_LOOKBACK
	// default, one day).
	DefaultLookback = 24 * time.Hour
	// DefaultNamesLookback is how far back /api/v2/services and
	// /api/v2/remoteServices look for names (the names lookback of
	// Zipkin's Elasticsearch storage, one day).
	DefaultNamesLookback = 24 * time.Hour
)

// namesMaxAge is the Cache-Control max-age, in seconds, of name lists
// once more than three services are known (Zipkin's QUERY_NAMES_MAX_AGE
// default).
const namesMaxAge = 300

// maxRemoteScan bounds the spans of a service /api/v2/remoteServices
// reads (newest first) to collect their remote service names.
const maxRemoteScan = 100_000

// Options configures the handler.
type Options struct {
	// Store answers the queries. Required.
	Store Store
	// Logger logs failures; nil discards.
	Logger *slog.Logger
	// Now is the clock (lookback, default end times); nil means time.Now.
	Now func() time.Time
	// Lookback is the default lookback of /api/v2/traces and
	// /api/v2/dependencies. 0 means DefaultLookback.
	Lookback time.Duration
	// NamesLookback is how far back from now /api/v2/services and
	// /api/v2/remoteServices look for names. 0 means DefaultNamesLookback.
	NamesLookback time.Duration
}

// Store is what the handler reads; *store.DB implements it. The handler
// may call its methods concurrently.
type Store interface {
	// FindTraces returns the summaries of the traces with a span matching
	// q, newest first (store.TraceQuery). The SpanFilter functions the
	// handler passes are safe for concurrent use and keep no reference to
	// the SpanView.
	FindTraces(ctx context.Context, q store.TraceQuery) ([]store.TraceSummary, error)
	// Trace returns every stored span of a trace, or store.ErrNotFound.
	Trace(ctx context.Context, id store.TraceID) (*tracepb.TracesData, error)
	// Services returns the services with spans starting in [start, end].
	Services(ctx context.Context, start, end time.Time) ([]store.ServiceStats, error)
	// Operations returns the span names (and kinds) seen for a service.
	Operations(ctx context.Context, service string) ([]store.Operation, error)
	// FlowGraph returns the flow graph of calls in [start, end].
	FlowGraph(ctx context.Context, start, end time.Time, q aggregate.GraphQuery) (*aggregate.Graph, error)
}

var _ Store = (*store.DB)(nil)

type handler struct {
	store         Store
	log           *slog.Logger
	now           func() time.Time
	lookback      time.Duration
	namesLookback time.Duration
	// serviceCount is the number of services the last /api/v2/services
	// returned: names are cacheable once there are more than three.
	serviceCount atomic.Int64
}

// NewHandler returns the handler of Zipkin's query API v2: GET (and HEAD)
// /api/v2/services, /spans, /remoteServices, /traces, /trace/{traceId},
// /traceMany, /dependencies, /autocompleteKeys and /autocompleteValues,
// also under /zipkin/api/v2 as Zipkin serves them; OPTIONS answers with
// the allowed methods; other methods get 405 and other paths 404. See the
// package documentation.
func NewHandler(o Options) http.Handler {
	h := &handler{store: o.Store, log: o.Logger, now: o.Now, lookback: o.Lookback, namesLookback: o.NamesLookback}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "zipkinapi")
	if h.now == nil {
		h.now = time.Now
	}
	if h.lookback <= 0 {
		h.lookback = DefaultLookback
	}
	if h.namesLookback <= 0 {
		h.namesLookback = DefaultNamesLookback
	}
	return h
}

// endpointFunc serves one endpoint; arg is the path parameter.
type endpointFunc func(h *handler, w http.ResponseWriter, r *http.Request, arg string) error

var endpoints = map[string]endpointFunc{
	"services":           (*handler).services,
	"spans":              (*handler).spanNames,
	"remoteServices":     (*handler).remoteServices,
	"traces":             (*handler).traces,
	"traceMany":          (*handler).traceMany,
	"dependencies":       (*handler).dependencies,
	"autocompleteKeys":   (*handler).autocompleteKeys,
	"autocompleteValues": (*handler).autocompleteValues,
}

// route finds the endpoint of path.
func route(path string) (endpointFunc, string, bool) {
	if strings.HasPrefix(path, "/zipkin/api/v2/") {
		path = path[len("/zipkin"):]
	}
	rest, ok := strings.CutPrefix(path, "/api/v2/")
	if !ok {
		return nil, "", false
	}
	if id, ok := strings.CutPrefix(rest, "trace/"); ok {
		if id == "" || strings.Contains(id, "/") {
			return nil, "", false
		}
		return (*handler).trace, id, true
	}
	f, ok := endpoints[rest]
	return f, "", ok
}

const allowed = "GET, HEAD, OPTIONS"

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, arg, ok := route(r.URL.Path)
	switch {
	case r.Method == http.MethodTrace:
		// Zipkin blocks TRACE everywhere.
		writeText(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	case !ok:
		writeText(w, http.StatusNotFound, "Not Found")
		return
	case r.Method == http.MethodOptions:
		w.Header().Set("Allow", allowed)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", allowed)
		writeText(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	if err := f(h, w, r, arg); err != nil {
		h.fail(w, r, err)
	}
}

// fail answers a failed request: 400 with the message of a bad request
// (as Zipkin answers IllegalArgumentException), else 500 with the error
// (logged, unless the client went away).
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var bad *badRequest
	if errors.As(err, &bad) {
		writeText(w, http.StatusBadRequest, bad.msg)
		return
	}
	if r.Context().Err() == nil {
		h.log.Warn("zipkin query failed", "path", r.URL.Path, "err", err)
	}
	if errors.Is(err, store.ErrWarmingUp) || errors.Is(err, store.ErrClosed) {
		writeText(w, http.StatusServiceUnavailable, err.Error()) // starting or stopping: retry
		return
	}
	writeText(w, http.StatusInternalServerError, err.Error())
}

func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(code)
	io.WriteString(w, msg)
}

func writeJSON(w http.ResponseWriter, body []byte, cache bool) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if cache {
		w.Header().Set("Cache-Control", "max-age="+strconv.Itoa(namesMaxAge)+", must-revalidate")
	}
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// writeNames writes a sorted list of names, cacheable (as Zipkin's
// maybeCacheNames) when cache is set.
func writeNames(w http.ResponseWriter, names []string, cache bool) {
	slices.Sort(names)
	writeJSON(w, appendStrings(nil, names), cache)
}

// services serves GET /api/v2/services: the (lower-cased) services with
// spans in the names lookback.
func (h *handler) services(w http.ResponseWriter, r *http.Request, _ string) error {
	now := h.now()
	svcs, err := h.store.Services(r.Context(), now.Add(-h.namesLookback), now)
	if err != nil {
		return fmt.Errorf("services: %w", err)
	}
	set := make(map[string]struct{}, len(svcs))
	for _, s := range svcs {
		set[strings.ToLower(s.Name)] = struct{}{}
	}
	names := mapKeys(set)
	h.serviceCount.Store(int64(len(names)))
	writeNames(w, names, len(names) > 3)
	return nil
}

// spanNames serves GET /api/v2/spans?serviceName=[&spanKind=]: the span
// names of a service. spanKind (client, server, producer, consumer;
// case-insensitive) is an extension that keeps the names of that kind.
func (h *handler) spanNames(w http.ResponseWriter, r *http.Request, _ string) error {
	service, err := requiredParam(r.URL.Query(), "serviceName")
	if err != nil {
		return err
	}
	kind := tracepb.Span_SPAN_KIND_UNSPECIFIED
	if k, _ := queryParam(r.URL.Query(), "spanKind"); k != "" {
		if kind = parseSpanKind(k); kind == tracepb.Span_SPAN_KIND_UNSPECIFIED {
			return badRequestf("spanKind must be one of client, server, producer, consumer, got " + strconv.Quote(k))
		}
	}
	names := []string{}
	if service = strings.ToLower(service); service != "" {
		now := h.now()
		variants, err := h.serviceVariants(r.Context(), service, now.Add(-h.namesLookback), now)
		if err != nil {
			return err
		}
		set := map[string]struct{}{}
		for _, v := range variants {
			ops, err := h.store.Operations(r.Context(), v)
			if err != nil {
				return fmt.Errorf("operations of %q: %w", v, err)
			}
			for _, op := range ops {
				if kind == tracepb.Span_SPAN_KIND_UNSPECIFIED || op.Kind == kind {
					set[strings.ToLower(op.Name)] = struct{}{}
				}
			}
		}
		names = mapKeys(set)
	}
	writeNames(w, names, h.serviceCount.Load() > 3)
	return nil
}

func parseSpanKind(s string) tracepb.Span_SpanKind {
	switch strings.ToLower(s) {
	case "client":
		return tracepb.Span_SPAN_KIND_CLIENT
	case "server":
		return tracepb.Span_SPAN_KIND_SERVER
	case "producer":
		return tracepb.Span_SPAN_KIND_PRODUCER
	case "consumer":
		return tracepb.Span_SPAN_KIND_CONSUMER
	}
	return tracepb.Span_SPAN_KIND_UNSPECIFIED
}

// remoteServices serves GET /api/v2/remoteServices?serviceName=: the
// remote service names of the spans of a service in the names lookback.
func (h *handler) remoteServices(w http.ResponseWriter, r *http.Request, _ string) error {
	service, err := requiredParam(r.URL.Query(), "serviceName")
	if err != nil {
		return err
	}
	names := []string{}
	if service = strings.ToLower(service); service != "" {
		if names, err = h.remoteServiceNames(r.Context(), service); err != nil {
			return err
		}
	}
	writeNames(w, names, h.serviceCount.Load() > 3)
	return nil
}

// traces serves GET /api/v2/traces: the matching traces, newest first,
// each a list of spans.
func (h *handler) traces(w http.ResponseWriter, r *http.Request, _ string) error {
	q, err := parseTraceQuery(r.URL.Query(), h.now(), h.lookback)
	if err != nil {
		return err
	}
	ids, err := h.findTraces(r.Context(), q)
	if err != nil {
		return err
	}
	b, err := h.appendTraces(r.Context(), []byte{'['}, ids)
	if err != nil {
		return err
	}
	writeJSON(w, append(b, ']'), false)
	return nil
}

// appendTraces appends the traces of ids (those still stored), separated
// by commas.
func (h *handler) appendTraces(ctx context.Context, b []byte, ids []store.TraceID) ([]byte, error) {
	first := true
	for _, id := range ids {
		td, err := h.store.Trace(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("trace %s: %w", traceIDString(id), err)
		}
		spans := convertTrace(td)
		if len(spans) == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendTrace(b, spans)
	}
	return b, nil
}

// trace serves GET /api/v2/trace/{traceId}.
func (h *handler) trace(w http.ResponseWriter, r *http.Request, raw string) error {
	id, norm, err := parseTraceID(javaTrim(raw))
	if err != nil {
		return err
	}
	td, err := h.store.Trace(r.Context(), id)
	var spans []zspan
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("trace %s: %w", norm, err)
	default:
		spans = convertTrace(td)
	}
	if len(spans) == 0 {
		writeText(w, http.StatusNotFound, norm+" not found")
		return nil
	}
	writeJSON(w, appendTrace(nil, spans), false)
	return nil
}

// traceMany serves GET /api/v2/traceMany?traceIds=a,b: the traces found
// among at least two distinct IDs, in the order asked.
func (h *handler) traceMany(w http.ResponseWriter, r *http.Request, _ string) error {
	param, err := requiredParam(r.URL.Query(), "traceIds")
	if err != nil {
		return err
	}
	if param == "" {
		return badRequestf("traceIds parameter is empty")
	}
	var ids []store.TraceID
	seen := map[store.TraceID]bool{}
	for _, raw := range strings.SplitN(param, ",", maxTraceIDs) {
		id, _, err := parseTraceID(raw)
		if err != nil {
			return err
		}
		if seen[id] {
			return badRequestf("redundant traceId: " + raw)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if len(ids) == 1 {
		return badRequestf("Use /api/v2/trace/{traceId} endpoint to retrieve a single trace")
	}
	b, err := h.appendTraces(r.Context(), []byte{'['}, ids)
	if err != nil {
		return err
	}
	writeJSON(w, append(b, ']'), false)
	return nil
}

// dependencies serves GET /api/v2/dependencies?endTs=[&lookback=]: the
// service-level calls of the flow graph in [endTs-lookback, endTs].
func (h *handler) dependencies(w http.ResponseWriter, r *http.Request, _ string) error {
	v := r.URL.Query()
	s, err := requiredParam(v, "endTs")
	if err != nil {
		return err
	}
	endTs, err := parseLong(s)
	if err != nil {
		return err
	}
	lookback, hasLookback, err := optionalLong(v, "lookback")
	if err != nil {
		return err
	}
	if !hasLookback {
		lookback = h.lookback.Milliseconds()
	}
	switch {
	case endTs <= 0:
		return badRequestf("endTs <= 0")
	case lookback <= 0:
		return badRequestf("lookback <= 0")
	}
	links, err := h.dependencyLinks(r.Context(), endTs, lookback)
	if err != nil {
		return err
	}
	writeJSON(w, appendLinks(nil, links), false)
	return nil
}

// autocompleteKeys serves GET /api/v2/autocompleteKeys: no keys are
// configured for autocompletion (Zipkin's default), so the list is
// empty.
func (h *handler) autocompleteKeys(w http.ResponseWriter, _ *http.Request, _ string) error {
	writeNames(w, []string{}, true)
	return nil
}

// autocompleteValues serves GET /api/v2/autocompleteValues?key=: empty,
// as no key is configured for autocompletion.
func (h *handler) autocompleteValues(w http.ResponseWriter, r *http.Request, _ string) error {
	key, err := requiredParam(r.URL.Query(), "key")
	if err != nil {
		return err
	}
	if key == "" {
		return badRequestf("key was empty")
	}
	writeNames(w, []string{}, false)
	return nil
}

func mapKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
