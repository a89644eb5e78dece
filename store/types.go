package store

import (
	"errors"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Sentinel errors of the store.
var (
	// ErrNotFound is returned when a trace (or other keyed object) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrOverloaded is returned by writes refused because the write queue is full.
	ErrOverloaded = errors.New("write queue full")
	// ErrClosed is returned by operations on a closed DB.
	ErrClosed = errors.New("store closed")
	// ErrWarmingUp is returned by rollup queries (FlowGraph, Latency) made
	// in the first seconds after a restart, while the aggregator replays
	// the chunks its persisted state does not cover, once they have waited
	// Options.AggregationWait for it.
	ErrWarmingUp = errors.New("warming up")
	// ErrSchema is returned by Open when the file has another schema version.
	ErrSchema = errors.New("unsupported schema version")
	// ErrDiskFull is returned by writes that could not be committed for
	// lack of disk space. Nothing of the request was stored; it may be
	// retried once space is freed.
	ErrDiskFull = errors.New("disk full")
	// ErrCommitFailed is returned by writes whose commit failed for
	// another storage reason (an I/O error). Nothing was stored; the
	// request may be retried.
	ErrCommitFailed = errors.New("commit failed")
	// ErrTooLarge is returned by a write that the store cannot hold as it
	// is (a key over bbolt's limit). Nothing was stored; retrying the same
	// request fails the same way.
	ErrTooLarge = errors.New("request holds an item too large to store")
)

// TraceID is a 16-byte OTLP trace ID.
type TraceID [16]byte

// TraceQuery selects traces. A trace matches when at least one of its spans
// satisfies every set condition at once (the semantics of Jaeger's search):
// the span's service and operation (name) equal Service and Operation, its
// start time lies in [Start, End], its duration in [MinDuration, MaxDuration],
// and every Attributes entry equals a string attribute of the span or of its
// resource. Zero values mean "no condition". Status, in addition, is a
// condition on the whole trace (all its stored spans, not only the matching
// one), applied before Limit.
type TraceQuery struct {
	Service   string
	Operation string
	// Source and Target, both set and Service empty, select the traces
	// with a call making the flow-graph edge Source → Target at the
	// service level (see edgesearch.go); Operation, MinDuration and
	// MaxDuration then apply to the call.
	Source, Target string
	Start          time.Time
	End            time.Time
	MinDuration    time.Duration
	MaxDuration    time.Duration
	Attributes     map[string]string
	// Status keeps only the traces with (TraceStatusError) or without
	// (TraceStatusOK) a span of status ERROR, i.e. whose summary has
	// ErrorCount > 0 or == 0. TraceStatusAny ("") keeps all.
	Status TraceStatus
	// SpanFilter, when set, is a further condition on the matching span,
	// applied after every other one to the span decoded from its stored
	// bytes, with its resource and instrumentation scope: conditions the
	// index cannot answer (event names, attribute keys, the compatibility
	// APIs' tag semantics). A span whose bytes do not decode is judged on
	// its fallback (read.go). Put what can be, in Service, Operation or
	// Attributes, so that the index narrows the chunks first.
	SpanFilter func(SpanView) bool
	// Limit caps the number of traces returned; 0 means DefaultSearchLimit.
	Limit int
}

// SpanView is a span offered to TraceQuery.SpanFilter. Its messages are
// decoded for the call and not kept by the store.
type SpanView struct {
	Span     *tracepb.Span
	Resource *resourcepb.Resource
	Scope    *commonpb.InstrumentationScope
}

// Search limits (DESIGN.md, "Contract details").
const (
	DefaultSearchLimit = 20
	MaxSearchLimit     = 1000
)

// TraceStatus is the trace status condition of a TraceQuery.
type TraceStatus string

// Values of TraceQuery.Status.
const (
	// TraceStatusAny keeps every trace.
	TraceStatusAny TraceStatus = ""
	// TraceStatusError keeps the traces with at least one span of status
	// ERROR.
	TraceStatusError TraceStatus = "error"
	// TraceStatusOK keeps the traces with no span of status ERROR.
	TraceStatusOK TraceStatus = "ok"
)

// keep reports whether a trace with summary sum satisfies the condition.
func (st TraceStatus) keep(sum *TraceSummary) bool {
	switch st {
	case TraceStatusError:
		return sum.ErrorCount > 0
	case TraceStatusOK:
		return sum.ErrorCount == 0
	}
	return true
}

// TraceSummary describes one trace in search results.
type TraceSummary struct {
	TraceID       TraceID
	RootService   string // service of the root span; of the earliest span when no root arrived
	RootOperation string
	Start         time.Time     // earliest span start
	Duration      time.Duration // latest span end minus earliest span start
	SpanCount     int
	ErrorCount    int      // spans with status ERROR
	Services      []string // sorted, distinct
	// MatchedSpan is the span that satisfied the search: the first found,
	// or the call of an edge search. Zero for correlation lookups.
	MatchedSpan [8]byte
}

// ServiceStats is a service seen in a time range with its span counts.
type ServiceStats struct {
	Name       string
	SpanCount  int64
	ErrorCount int64
}

// Operation is a span name seen for a service, with its span kind.
type Operation struct {
	Name string
	Kind tracepb.Span_SpanKind
}

// MetricInfo describes a metric name seen in the store.
type MetricInfo struct {
	Name        string
	Type        string // "gauge", "sum", "histogram", "exponential_histogram", "summary"
	Unit        string
	Description string
}
