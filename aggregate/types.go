package aggregate

import (
	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Level is a level of the flow-graph hierarchy.
type Level int

// Levels, from the finest. LevelService is the default.
const (
	LevelService Level = iota
	LevelInstance
	LevelZone
	LevelRegion
	LevelNamespace
)

// ParseLevel parses "service", "instance", "zone", "region" or "namespace";
// "" means LevelService.
func ParseLevel(s string) (Level, error) { return parseLevel(s) }

// String returns the level's name as ParseLevel accepts it.
func (l Level) String() string { return levelNames[l] }

// Node identifies where a span ran, from its resource attributes
// (service.name, service.instance.id, cloud.availability_zone, cloud.region,
// service.namespace), or an uninstrumented callee (Virtual) named from the
// client span's attributes.
type Node struct {
	Service   string
	Instance  string
	Zone      string
	Region    string
	Namespace string
	Virtual   bool
}

// At returns the node's name at level l. Missing attributes fall back:
// instance → service name; zone, region, namespace → "unknown". A virtual
// node has its one name at every level. Flow graphs identify nodes by ID,
// which adds the namespace.
func (n Node) At(l Level) string { return n.at(l) }

// SeriesKey identifies a per-node rollup series.
type SeriesKey struct {
	Node      Node
	Operation string // span name
	Kind      int32  // OTLP span kind
	Status    int32  // OTLP status code (0 unset, 1 ok, 2 error)
}

// EdgeKey identifies a call-edge rollup series.
type EdgeKey struct {
	Source    Node
	Target    Node
	Operation string // the client span's name (the server span's for edges without a client span)
}

// Exemplar points at a span that contributed to a rollup.
type Exemplar struct {
	TraceID [16]byte
	SpanID  [8]byte
	Value   int64 // duration, ns
	Time    int64 // span start, Unix ns
	Error   bool  // the span (for an edge: the call) had status ERROR
}

// Rollup is count, error count, an HDR histogram of durations (ns) and
// exemplars: the slowest spans, one span per octave of duration, and the
// newest failing spans. A Rollup is not safe for concurrent use.
type Rollup struct {
	Count  int64
	Errors int64
	// Hist holds durations in nanoseconds. Values above the configured
	// maximum are recorded as the maximum (and counted in Clamped).
	Hist    *hdr.PackedHistogram
	Clamped int64
	// Exemplars are the slowest spans seen, at most MaxExemplars, slowest first.
	Exemplars []Exemplar
	// Spread holds, for every octave of duration that has spans (the band
	// bits.Len64(duration ns): [2^(b-1), 2^b) ns), the newest span seen in
	// it, sorted by band: at most 64, in practice one per factor of 2
	// between the fastest and the slowest span. Whatever the shape of the
	// distribution, each of its modes has an example near its peak.
	Spread []Exemplar
	// ErrorExemplars are the newest failing spans, at most
	// MaxErrorExemplars, newest first.
	ErrorExemplars []Exemplar
	// Retried counts the calls that were retries (an edge's client span
	// with http.request.resend_count ≥ 1); always 0 for series.
	Retried int64
	// Failed summarizes the durations of the failed spans (status ERROR)
	// by octave band (SpreadBand), sorted by band: their count, lowest and
	// highest duration. Failed calls that all end at about one duration
	// are the mark of a timeout (InferTimeout).
	Failed []FailedBand
	// spreadMask has bit b set when Spread holds band b.
	spreadMask uint64

	// maxExemplars is the exemplar cap (Geometry.MaxExemplars); 0 means
	// DefaultMaxExemplars, or the cap of the first rollup merged in.
	maxExemplars int32
}

// FailedBand is the failed spans of a rollup in one octave band of
// duration: how many, the lowest and the highest duration (ns).
type FailedBand struct {
	Band     int
	Count    int64
	Min, Max int64
}

// Window holds the rollups of one time window [Start, Start+Width) (Unix
// seconds), by series and by edge. A Window from Flush is a delta: windows
// with the same Start are merged losslessly.
type Window struct {
	Start  int64
	Width  int64
	Series map[SeriesKey]*Rollup
	Edges  map[EdgeKey]*Rollup
}

// KindFilter selects spans by kind for latency queries.
type KindFilter int

// Kind filters (DESIGN.md "Latency selection").
const (
	KindServer   KindFilter = iota // SERVER and CONSUMER (the default)
	KindClient                     // CLIENT and PRODUCER
	KindInternal                   // INTERNAL and UNSPECIFIED
	KindAll
)

// GraphQuery selects what a GraphAccumulator keeps.
type GraphQuery struct {
	Level     Level
	Operation string // "" = all operations
	// Namespace, when set, keeps only the series of nodes whose
	// service.namespace it is and the edges with such a node at one end
	// (calls into and out of the namespace, and into virtual nodes, which
	// have none). "" keeps everything.
	Namespace string
}

// Graph is a flow graph: nodes and edges at one level, merged over windows.
// Nodes are sorted by ID, edges by (Source, Target).
type Graph struct {
	Nodes []GraphNode
	Edges []GraphEdge
	// Seconds is the time the merged windows cover (for rates).
	Seconds int64
}

// GraphNode is one node of a flow graph.
type GraphNode struct {
	ID string
	// Namespace is the service.namespace of a node whose ID carries it
	// (Node.ID: Namespace/name), "" otherwise.
	Namespace string
	Virtual   bool
	// Region is the node's cloud.region (the first seen) at levels finer
	// than LevelRegion; "" for virtual nodes. Vizceral output groups by it.
	Region string
	// Service is, at LevelInstance, the ID at LevelService (Node.ID) of the
	// instance's service (the least one, should two services share an
	// instance ID); "" for virtual nodes and at the other levels.
	Service string
	// Requests merges the node's server-side spans (SERVER and CONSUMER);
	// for a virtual node, the client-side rollups of the edges into it.
	Requests Rollup
	// Spans and SpanErrors count every span of the node, any kind.
	Spans      int64
	SpanErrors int64
}

// GraphEdge is one edge of a flow graph, summed over operations.
type GraphEdge struct {
	Source, Target string
	// Virtual is true when the target is a virtual node.
	Virtual bool
	// Calls merges the client-side durations of the calls.
	Calls Rollup
	// Provisional is how many of Calls are provisional: client halves
	// that name their callee, still held for a server half (at most
	// PairWait), shown on their virtual edge meanwhile (package
	// documentation, "Provisional calls").
	Provisional int64
}

// LatencyQuery selects the spans of a latency distribution. Either Service
// (with optional Operation and Kind) or Source and Target (an edge, by node
// names at Level) is set.
type LatencyQuery struct {
	Service   string
	Operation string
	Kind      KindFilter
	Source    string
	Target    string
	Level     Level
	// Step, in seconds, splits the range into a series; 0 = no series.
	Step int64
}

// Latency is a merged latency distribution, with an optional series.
type Latency struct {
	Total  Rollup
	Series []LatencyStep
	// Provisional is how many of Total.Count are provisional calls
	// (GraphEdge.Provisional); only edge queries have them.
	Provisional int64
}

// LatencyStep is the distribution of one step of a latency series.
type LatencyStep struct {
	Start  int64 // Unix seconds
	Rollup Rollup
}
