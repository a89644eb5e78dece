package jaegerapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/ingest/otlpjson"
	"github.com/flowscope/flowscope/store"
)

// Options configures the handler.
type Options struct {
	// Store answers the queries. Required.
	Store Store
	// Logger logs failures; nil discards.
	Logger *slog.Logger
	// Now is the clock (lookback, default end times); nil means time.Now.
	Now func() time.Time
}

// Store is what the handler reads (implemented by *store.DB). Its methods
// must be safe for concurrent use; the handler does not retain what they
// return.
type Store interface {
	// FindTraces returns the traces with a span matching q, newest first.
	FindTraces(ctx context.Context, q store.TraceQuery) ([]store.TraceSummary, error)
	// Trace returns every stored span of a trace, or store.ErrNotFound.
	Trace(ctx context.Context, id store.TraceID) (*tracepb.TracesData, error)
	// Services lists the services with spans in [start, end]; zero times
	// are open ends.
	Services(ctx context.Context, start, end time.Time) ([]store.ServiceStats, error)
	// Operations lists the span names and kinds of a service.
	Operations(ctx context.Context, service string) ([]store.Operation, error)
	// FlowGraph returns the flow graph of [start, end].
	FlowGraph(ctx context.Context, start, end time.Time, q aggregate.GraphQuery) (*aggregate.Graph, error)
}

var _ Store = (*store.DB)(nil)

// maxTransformBytes bounds the OTLP/JSON body of POST /api/transform.
const maxTransformBytes = 16 << 20

// handler serves Jaeger's query API.
type handler struct {
	store  Store
	logger *slog.Logger
	now    func() time.Time
}

// NewHandler returns the handler of Jaeger's query API. It serves the
// paths Jaeger's query service serves, /api/..., and is mounted with the
// /jaeger prefix stripped. It panics if o.Store is nil.
func NewHandler(o Options) http.Handler {
	if o.Store == nil {
		panic("jaegerapi: Options.Store is nil")
	}
	h := &handler{store: o.Store, logger: o.Logger, now: o.Now}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	h.logger = h.logger.With("component", "jaegerapi")
	if h.now == nil {
		h.now = time.Now
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/services", h.services)
	mux.HandleFunc("GET /api/services/{service}/operations", h.operationsLegacy)
	mux.HandleFunc("GET /api/operations", h.operations)
	mux.HandleFunc("GET /api/traces", h.search)
	mux.HandleFunc("GET /api/traces/{traceID}", h.trace)
	mux.HandleFunc("GET /api/dependencies", h.dependencies)
	mux.HandleFunc("POST /api/transform", h.transform)
	return mux
}

// services answers /api/services: every service name, sorted; null when
// there are none (as Jaeger's).
func (h *handler) services(w http.ResponseWriter, r *http.Request) {
	stats, err := h.store.Services(r.Context(), time.Time{}, time.Time{})
	if err != nil {
		h.fail(w, fmt.Errorf("list services: %w", err), http.StatusInternalServerError)
		return
	}
	var names []string
	for _, s := range stats {
		names = append(names, jaegerService(s.Name))
	}
	slices.Sort(names)
	names = slices.Compact(names)
	h.write(w, r, &envelope{Data: names, Total: len(names)})
}

// operationsLegacy answers /api/services/{service}/operations: the
// distinct span names of the service, sorted; null when there are none.
func (h *handler) operationsLegacy(w http.ResponseWriter, r *http.Request) {
	// Like Jaeger, the service is the raw path segment query-unescaped
	// ("+" is a space); one that does not unescape is "".
	service, _ := url.QueryUnescape(rawSegment(r, "/api/services/", "/operations"))
	ops, err := h.store.Operations(r.Context(), storeService(service))
	if err != nil {
		h.fail(w, fmt.Errorf("list operations: %w", err), http.StatusInternalServerError)
		return
	}
	var names []string
	for _, op := range ops {
		names = append(names, op.Name)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	h.write(w, r, &envelope{Data: names, Total: len(names)})
}

// operations answers /api/operations?service=&spanKind=: the span names
// and kinds of the service ("" for UNSPECIFIED), with the kind spanKind
// when it is set, sorted by name and kind.
func (h *handler) operations(w http.ResponseWriter, r *http.Request) {
	service := r.FormValue("service")
	if service == "" {
		h.fail(w, errServiceRequired, http.StatusBadRequest)
		return
	}
	kind := r.FormValue("spanKind")
	ops, err := h.store.Operations(r.Context(), storeService(service))
	if err != nil {
		h.fail(w, fmt.Errorf("list operations: %w", err), http.StatusInternalServerError)
		return
	}
	data := []uiOperation{}
	for _, op := range ops {
		o := uiOperation{Name: op.Name, SpanKind: kindName(op.Kind)}
		if kind == "" || kind == o.SpanKind {
			data = append(data, o)
		}
	}
	slices.SortFunc(data, func(a, b uiOperation) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.SpanKind, b.SpanKind)
	})
	data = slices.Compact(data)
	h.write(w, r, &envelope{Data: data, Total: len(data)})
}

// trace answers /api/traces/{traceID}; start=, end= and raw= as in search.
func (h *handler) trace(w http.ResponseWriter, r *http.Request) {
	id, err := parseTraceID(rawSegment(r, "/api/traces/", ""))
	if err != nil {
		h.fail(w, err, http.StatusBadRequest)
		return
	}
	r.ParseForm() // errors leave what parsed, as FormValue does
	for _, p := range []string{"start", "end"} {
		if _, err := parseTime(r.Form, p, time.Microsecond, time.Time{}); err != nil {
			h.fail(w, err, http.StatusBadRequest)
			return
		}
	}
	raw, err := parseBool(r.Form, "raw")
	if err != nil {
		h.fail(w, err, http.StatusBadRequest)
		return
	}
	td, err := h.store.Trace(r.Context(), id.storeID())
	if errors.Is(err, store.ErrNotFound) {
		h.fail(w, errTraceNotFound, http.StatusNotFound)
		return
	}
	if err != nil {
		h.fail(w, fmt.Errorf("read trace %s: %w", id, err), http.StatusInternalServerError)
		return
	}
	h.write(w, r, &envelope{Data: []*uiTrace{convertTrace(td, raw)}})
}

// rawSegment is the still escaped path segment between prefix and suffix
// (Jaeger's router reads encoded paths).
func rawSegment(r *http.Request, prefix, suffix string) string {
	return strings.TrimSuffix(strings.TrimPrefix(r.URL.EscapedPath(), prefix), suffix)
}

// storeUnknownService is the store's service of spans whose resource has
// no (string, non-empty) service.name.
const storeUnknownService = "unknown_service"

// storeService is the store's name of a service as Jaeger names it.
func storeService(s string) string {
	switch s {
	case missingServiceName, emptyServiceName, serviceNameWrongType:
		return storeUnknownService
	}
	return s
}

// jaegerService is Jaeger's name of a service as the store names it:
// unknown_service is listed as missing-service-name.
func jaegerService(s string) string {
	if s == storeUnknownService {
		return missingServiceName
	}
	return s
}

// errTraceNotFound is Jaeger's message for an unknown trace.
var errTraceNotFound = errors.New("trace not found")

// search answers /api/traces: the traces given by traceID=, or those with
// a span matching every condition (parseTraceQuery), newest first.
func (h *handler) search(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	q, err := parseTraceQuery(r.Form, h.now())
	if err != nil {
		h.fail(w, err, http.StatusBadRequest)
		return
	}
	traces := []*uiTrace{}
	var notFound []apiError
	if len(q.traceIDs) > 0 {
		for _, id := range q.traceIDs {
			td, err := h.store.Trace(r.Context(), id.storeID())
			if errors.Is(err, store.ErrNotFound) {
				notFound = append(notFound, apiError{Msg: errTraceNotFound.Error(), TraceID: id.String()})
				continue
			}
			if err != nil {
				h.fail(w, fmt.Errorf("read trace %s: %w", id, err), http.StatusInternalServerError)
				return
			}
			traces = append(traces, convertTrace(td, q.raw))
		}
		h.write(w, r, &envelope{Data: traces, Errors: notFound})
		return
	}
	found, err := h.find(r.Context(), q)
	if err != nil {
		h.fail(w, err, http.StatusInternalServerError)
		return
	}
	for _, sum := range found {
		td, err := h.store.Trace(r.Context(), sum.TraceID)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted by retention meanwhile
		}
		if err != nil {
			h.fail(w, fmt.Errorf("read trace %s: %w", sum.TraceID, err), http.StatusInternalServerError)
			return
		}
		traces = append(traces, convertTrace(td, q.raw))
	}
	h.write(w, r, &envelope{Data: traces})
}

// find runs a search in the store. Conditions no span can meet, which the
// store would read as "no condition" (an end before 1970, a negative
// maxDuration), give no traces, as in Jaeger.
func (h *handler) find(ctx context.Context, q *traceQuery) ([]store.TraceSummary, error) {
	if q.end.UnixNano() <= 0 || q.maxDuration < 0 {
		return nil, nil
	}
	limit := q.limit
	if limit <= 0 {
		limit = defaultSearchLimit
	}
	filter := tagFilter(q.tags)
	service := storeService(q.service)
	if service == storeUnknownService {
		// The store's one name for resources without a usable
		// service.name; the resource tells which of Jaeger's it is.
		tags := filter
		filter = func(v store.SpanView) bool {
			return serviceName(v.Resource) == q.service && (tags == nil || tags(v))
		}
	}
	found, err := h.store.FindTraces(ctx, store.TraceQuery{
		Service:     service,
		Operation:   q.operation,
		Start:       q.start,
		End:         q.end,
		MinDuration: max(q.minDuration, 0),
		MaxDuration: q.maxDuration,
		SpanFilter:  filter,
		Limit:       min(limit, store.MaxSearchLimit),
	})
	if err != nil {
		return nil, fmt.Errorf("search traces: %w", err)
	}
	return found, nil
}

// dependencies answers /api/dependencies?endTs=&lookback=&service=: the
// calls between services in [endTs-lookback, endTs] from the flow graph.
func (h *handler) dependencies(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	q, err := parseDependenciesQuery(r.Form, h.now())
	if err != nil {
		h.fail(w, err, http.StatusBadRequest)
		return
	}
	start := q.end.Add(-q.lookback)
	if q.end.Before(start) {
		h.fail(w, errors.New("end time must be greater than start time"), http.StatusBadRequest)
		return
	}
	g, err := h.store.FlowGraph(r.Context(), start, q.end, aggregate.GraphQuery{Level: aggregate.LevelService})
	if err != nil {
		h.fail(w, fmt.Errorf("flow graph: %w", err), http.StatusInternalServerError)
		return
	}
	h.write(w, r, &envelope{Data: dependencyLinks(g, q.service)})
}

// transform answers POST /api/transform: the OTLP/JSON traces of the body
// rendered as Jaeger traces (unadjusted, as Jaeger's), one per trace ID
// in order of first appearance. The Jaeger UI uses it to open OTLP files.
func (h *handler) transform(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTransformBytes))
	if err != nil {
		status := http.StatusBadRequest
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			status = http.StatusRequestEntityTooLarge
		}
		h.fail(w, fmt.Errorf("read body: %w", err), status)
		return
	}
	td, err := otlpjson.UnmarshalTracesData(body)
	if err != nil {
		h.fail(w, fmt.Errorf("cannot unmarshal OTLP : %w", err), http.StatusBadRequest)
		return
	}
	var order []traceID
	byTrace := map[traceID][]*span{}
	for _, s := range fromOTLP(td, false) {
		if _, ok := byTrace[s.traceID]; !ok {
			order = append(order, s.traceID)
		}
		byTrace[s.traceID] = append(byTrace[s.traceID], s)
	}
	traces := make([]*uiTrace, 0, len(order))
	for _, id := range order {
		traces = append(traces, renderTrace(byTrace[id]))
	}
	r.ParseForm()
	h.write(w, r, &envelope{Data: traces})
}

// write sends a 200 answer; prettyPrint= (anything but "" and "false")
// indents it.
func (h *handler) write(w http.ResponseWriter, r *http.Request, e *envelope) {
	var b []byte
	var err error
	if p := r.FormValue("prettyPrint"); p != "" && p != "false" {
		b, err = json.MarshalIndent(e, "", "    ")
	} else {
		b, err = json.Marshal(e)
	}
	if err != nil {
		h.fail(w, fmt.Errorf("failed writing HTTP response: failed marshalling HTTP response to JSON: %w", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// fail sends an error answer as Jaeger does: the envelope with one error
// carrying the status, as text/plain (http.Error). An error of a store
// that is starting or stopping (warming up, closed) is answered 503
// whatever status says, so that clients retry.
func (h *handler) fail(w http.ResponseWriter, err error, status int) {
	if errors.Is(err, store.ErrWarmingUp) || errors.Is(err, store.ErrClosed) {
		status = http.StatusServiceUnavailable
	}
	if status >= http.StatusInternalServerError {
		h.logger.Error("request failed", "err", err)
	}
	b, _ := json.Marshal(&envelope{Errors: []apiError{{Code: status, Msg: err.Error()}}})
	http.Error(w, string(b), status)
}
