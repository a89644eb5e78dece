package fanout

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/store"
)

// The peer API: POST /api/v1/peer/{method} with a JSON request body (the
// request types below) answers with
//
//	services, operations, search, correlation, metric-names: JSON
//	trace:       application/x-protobuf, an OTLP TracesData (404: unknown)
//	metrics:     application/x-protobuf, an OTLP MetricsData
//	flow-graph:  application/octet-stream, aggregate.AppendGraph
//	latency:     application/octet-stream, aggregate.AppendLatency
//	info:        JSON peerInfo
//
// Errors are plain text: 400 for a bad request, 404 for an unknown trace,
// 503 while the node is closing or warming up, 500 otherwise. Times are
// Unix nanoseconds; 0 is an open end where the store allows one.
const peerPrefix = "/api/v1/peer/"

// PeerPath is the route prefix of the peer API on a node's HTTP port.
const PeerPath = peerPrefix

// maxPeerRequest bounds a peer request body.
const maxPeerRequest = 1 << 20

type rangeReq struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

type operationsReq struct {
	Service string `json:"service"`
}

type traceReq struct {
	TraceID string `json:"traceId"`
}

// searchReq is a store.TraceQuery without its SpanFilter (a function,
// which cannot cross the network; see Store.FindTraces).
type searchReq struct {
	Service     string            `json:"service,omitempty"`
	Operation   string            `json:"operation,omitempty"`
	Source      string            `json:"source,omitempty"`
	Target      string            `json:"target,omitempty"`
	Start       int64             `json:"start,omitempty"`
	End         int64             `json:"end,omitempty"`
	MinDuration int64             `json:"minDuration,omitempty"`
	MaxDuration int64             `json:"maxDuration,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	Status      string            `json:"status,omitempty"`
	Limit       int               `json:"limit,omitempty"`
}

type correlationReq struct {
	ID    string `json:"id"`
	Limit int    `json:"limit"`
}

type metricsReq struct {
	Name  string `json:"name"`
	Start int64  `json:"start"`
	End   int64  `json:"end"`
}

type graphReq struct {
	Start     int64  `json:"start"`
	End       int64  `json:"end"`
	Level     int    `json:"level"`
	Operation string `json:"operation,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

type latencyReq struct {
	Start     int64  `json:"start"`
	End       int64  `json:"end"`
	Service   string `json:"service,omitempty"`
	Operation string `json:"operation,omitempty"`
	Kind      int    `json:"kind"`
	Source    string `json:"source,omitempty"`
	Target    string `json:"target,omitempty"`
	Level     int    `json:"level"`
	Step      int64  `json:"step,omitempty"`
}

// summary is a store.TraceSummary on the wire.
type summary struct {
	TraceID       string   `json:"traceId"`
	RootService   string   `json:"rootService"`
	RootOperation string   `json:"rootOperation"`
	Start         int64    `json:"start"`
	Duration      int64    `json:"duration"`
	SpanCount     int      `json:"spanCount"`
	ErrorCount    int      `json:"errorCount"`
	Services      []string `json:"services"`
	MatchedSpan   string   `json:"matchedSpan,omitempty"`
}

// peerInfo describes a node.
type peerInfo struct {
	Node string `json:"node"`
}

// unixTime converts wire nanoseconds to a time (0: the zero time).
func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// unixNano converts a time to wire nanoseconds (the zero time: 0).
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func toWire(s store.TraceSummary) summary {
	w := summary{
		TraceID: s.TraceID.String(), RootService: s.RootService, RootOperation: s.RootOperation,
		Start: unixNano(s.Start), Duration: int64(s.Duration), SpanCount: s.SpanCount, ErrorCount: s.ErrorCount,
		Services: s.Services,
	}
	if s.MatchedSpan != ([8]byte{}) {
		w.MatchedSpan = hex.EncodeToString(s.MatchedSpan[:])
	}
	return w
}

func fromWire(w summary) (store.TraceSummary, error) {
	s := store.TraceSummary{RootService: w.RootService, RootOperation: w.RootOperation,
		Start: unixTime(w.Start), Duration: time.Duration(w.Duration), SpanCount: w.SpanCount, ErrorCount: w.ErrorCount,
		Services: w.Services}
	if err := decodeHexID(s.TraceID[:], w.TraceID); err != nil {
		return s, fmt.Errorf("trace ID: %w", err)
	}
	if w.MatchedSpan != "" {
		if err := decodeHexID(s.MatchedSpan[:], w.MatchedSpan); err != nil {
			return s, fmt.Errorf("matched span ID: %w", err)
		}
	}
	return s, nil
}

func decodeHexID(dst []byte, s string) error {
	if hex.DecodedLen(len(s)) != len(dst) {
		return fmt.Errorf("%q: want %d hex digits", s, 2*len(dst))
	}
	_, err := hex.Decode(dst, []byte(s))
	return err
}

// Source is what a node's peer API reads. *store.DB implements it.
type Source interface {
	Services(ctx context.Context, start, end time.Time) ([]store.ServiceStats, error)
	Operations(ctx context.Context, service string) ([]store.Operation, error)
	Trace(ctx context.Context, id store.TraceID) (*tracepb.TracesData, error)
	FindTraces(ctx context.Context, q store.TraceQuery) ([]store.TraceSummary, error)
	Correlation(ctx context.Context, id string, limit int) ([]store.TraceSummary, error)
	MetricNames(ctx context.Context, start, end time.Time) ([]store.MetricInfo, error)
	Metrics(ctx context.Context, name string, start, end time.Time) ([]*metricspb.ResourceMetrics, error)
	FlowGraph(ctx context.Context, start, end time.Time, q aggregate.GraphQuery) (*aggregate.Graph, error)
	Latency(ctx context.Context, start, end time.Time, q aggregate.LatencyQuery) (*aggregate.Latency, error)
}

var _ Source = (*store.DB)(nil)

// PeerOptions configures NewPeerHandler.
type PeerOptions struct {
	// Source answers the queries. Required.
	Source Source
	// Geometry is the rollup geometry of Source's aggregates.
	Geometry aggregate.Geometry
	// Node names this node (node.name).
	Node string
	// Logger logs failures; nil discards.
	Logger *slog.Logger
}

// NewPeerHandler returns the node's peer API handler, to be mounted at
// PeerPath on its HTTP port (read scope).
func NewPeerHandler(o PeerOptions) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &peerHandler{o: o}
	mux := http.NewServeMux()
	route := func(method string, fn func(w http.ResponseWriter, r *http.Request, body []byte) error) {
		mux.HandleFunc("POST "+peerPrefix+method, func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPeerRequest))
			if err != nil {
				http.Error(w, "read request: "+err.Error(), http.StatusBadRequest)
				return
			}
			if err := fn(w, r, body); err != nil {
				h.fail(w, method, err)
			}
		})
	}
	route("info", h.info)
	route("services", h.services)
	route("operations", h.operations)
	route("trace", h.trace)
	route("search", h.search)
	route("correlation", h.correlation)
	route("metric-names", h.metricNames)
	route("metrics", h.metrics)
	route("flow-graph", h.flowGraph)
	route("latency", h.latency)
	return mux
}

type peerHandler struct{ o PeerOptions }

// badRequest marks errors of the request, answered 400.
type badRequest struct{ err error }

func (b badRequest) Error() string { return b.err.Error() }

func decodeReq(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest{fmt.Errorf("decode request: %w", err)}
	}
	return nil
}

func (h *peerHandler) fail(w http.ResponseWriter, method string, err error) {
	var br badRequest
	switch {
	case errors.As(err, &br):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case errors.Is(err, store.ErrNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, store.ErrClosed), errors.Is(err, store.ErrWarmingUp):
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		h.o.Logger.Error("peer query failed", "method", method, "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(b)
	return err
}

func writeBytes(w http.ResponseWriter, contentType string, b []byte) error {
	w.Header().Set("Content-Type", contentType)
	_, err := w.Write(b)
	return err
}

func (h *peerHandler) info(w http.ResponseWriter, _ *http.Request, _ []byte) error {
	return writeJSON(w, peerInfo{Node: h.o.Node})
}

func (h *peerHandler) services(w http.ResponseWriter, r *http.Request, body []byte) error {
	var q rangeReq
	if err := decodeReq(body, &q); err != nil {
		return err
	}
	out, err := h.o.Source.Services(r.Context(), unixTime(q.Start), unixTime(q.End))
	if err != nil {
		return err
	}
	return writeJSON(w, out)
}

func (h *peerHandler) operations(w http.ResponseWriter, r *http.Request, body []byte) error {
	var q operationsReq
	if err := decodeReq(body, &q); err != nil {
		return err
	}
	out, err := h.o.Source.Operations(r.Context(), q.Service)
	if err != nil {
		return err
	}
	return writeJSON(w, out)
}

func (h *peerHandler) trace(w http.ResponseWriter, r *http.Request, body []byte) error {
	var q traceReq
	if err := decodeReq(body, &q); err != nil {
		return err
	}
	var id store.TraceID
	if err := decodeHexID(id[:], q.TraceID); err != nil {
		return badRequest{fmt.Errorf("trace ID: %w", err)}
	}
	td, err := h.o.Source.Trace(r.Context(), id)
	if err != nil {
		return err
	}
	b, err := proto.Marshal(td)
	if err != nil {
		return fmt.Errorf("encode trace: %w", err)
	}
	return writeBytes(w, "application/x-protobuf", b)
}

func (h *peerHandler) search(w http.ResponseWriter, r *http.Request, body []byte) error {
	var q searchReq
	if err := decodeReq(body, &q); err != nil {
		return err
	}
	sums, err := h.o.Source.FindTraces(r.Context(), store.TraceQuery{
		Service: q.Service, Operation: q.Operation, Source: q.Source, Target: q.Target,
		Start: unixTime(q.Start), End: unixTime(q.End),
		MinDuration: time.Duration(q.MinDuration), MaxDuration: time.Duration(q.MaxDuration),
		Attributes: q.Attributes, Status: store.TraceStatus(q.Status), Limit: q.Limit,
	})
	if err != nil {
		return err
	}
	return writeSummaries(w, sums)
}

func writeSummaries(w http.ResponseWriter, sums []store.TraceSummary) error {
	out := make([]summary, len(sums))
	for i, s := range sums {
		out[i] = toWire(s)
	}
	return writeJSON(w, out)
}

func (h *peerHandler) correlation(w http.ResponseWriter, r *http.Request, body []byte) error {
	var q correlationReq
	if err := decodeReq(body, &q); err != nil {
		return err
	}
	sums, err := h.o.Source.Correlation(r.Context(), q.ID, q.Limit)
	if err != nil {
		return err
	}
	return writeSummaries(w, sums)
}

func (h *peerHandler) metricNames(w http.ResponseWriter, r *http.Request, body []byte) error {
	var q rangeReq
	if err := decodeReq(body, &q); err != nil {
		return err
	}
	out, err := h.o.Source.MetricNames(r.Context(), unixTime(q.Start), unixTime(q.End))
	if err != nil {
		return err
	}
	return writeJSON(w, out)
}

func (h *peerHandler) metrics(w http.ResponseWriter, r *http.Request, body []byte) error {
	var q metricsReq
	if err := decodeReq(body, &q); err != nil {
		return err
	}
	rms, err := h.o.Source.Metrics(r.Context(), q.Name, unixTime(q.Start), unixTime(q.End))
	if err != nil {
		return err
	}
	b, err := proto.Marshal(&metricspb.MetricsData{ResourceMetrics: rms})
	if err != nil {
		return fmt.Errorf("encode metrics: %w", err)
	}
	return writeBytes(w, "application/x-protobuf", b)
}

func (h *peerHandler) flowGraph(w http.ResponseWriter, r *http.Request, body []byte) error {
	var q graphReq
	if err := decodeReq(body, &q); err != nil {
		return err
	}
	g, err := h.o.Source.FlowGraph(r.Context(), unixTime(q.Start), unixTime(q.End),
		aggregate.GraphQuery{Level: aggregate.Level(q.Level), Operation: q.Operation, Namespace: q.Namespace})
	if err != nil {
		return err
	}
	return writeBytes(w, "application/octet-stream", aggregate.AppendGraph(nil, g, h.o.Geometry))
}

func (h *peerHandler) latency(w http.ResponseWriter, r *http.Request, body []byte) error {
	var q latencyReq
	if err := decodeReq(body, &q); err != nil {
		return err
	}
	l, err := h.o.Source.Latency(r.Context(), unixTime(q.Start), unixTime(q.End), aggregate.LatencyQuery{
		Service: q.Service, Operation: q.Operation, Kind: aggregate.KindFilter(q.Kind),
		Source: q.Source, Target: q.Target, Level: aggregate.Level(q.Level), Step: q.Step,
	})
	if err != nil {
		return err
	}
	return writeBytes(w, "application/octet-stream", aggregate.AppendLatency(nil, l, h.o.Geometry))
}
