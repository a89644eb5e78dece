// Package aggregate rolls spans up, as they are committed, into windows of
// latency rollups: per node series (service, instance, zone, region,
// namespace × operation × span kind × status) and per call edge (source
// node → target node × operation), each a count, an error count, an HDR
// histogram of durations and the slowest exemplars. It pairs the client
// and server spans of a call into edges, names uninstrumented callees
// (virtual nodes), encodes windows for the store, and merges them back
// into flow graphs and latency distributions for queries.
//
// # Windows
//
// A span counts in the window floor(start/WindowWidth) of its start time;
// an edge in the window of its client span's start (of the server span's
// for an edge without a client span). A Window from Flush or Open holds the
// deltas since the previous Flush; windows with the same Start merge
// losslessly (Window.Merge, Rollup.Merge), and finer windows merge into
// coarser ones the same way.
//
// Histograms are hdrhistogram-go PackedHistograms of nanoseconds, 1 ns to
// Options.MaxValue (default 1 h) at Options.SignificantDigits (default 2:
// every value, hence every quantile, within 1/128 < 1% of the exact value).
// Durations above MaxValue are recorded as MaxValue and counted in
// Rollup.Clamped; zero durations are recorded as 0. Note that
// PackedHistogram.ValueAtPercentile takes 0–100.
//
// # Pairing rules
//
// The node of a span comes from its resource: service.name (or
// unknown_service), service.instance.id, cloud.availability_zone,
// cloud.region, service.namespace. A resource with the attribute
// synthetic.check (the synthetic-check prober's) is the node
// "synthetic:<check>" whatever its service.name (ServiceName). For every
// valid span:
//
//   - A CLIENT or PRODUCER span pairs with the server children already
//     waiting for it, one edge per child, and is then held for PairWait so
//     that later children (fan-out) pair too.
//   - A SERVER or CONSUMER span whose parent is a held client span makes
//     an edge client node → server node, with the client's operation and
//     duration, an error if either span has status ERROR, and the client
//     span as exemplar. If its parent is a held non-client span of another
//     service (the caller has no client instrumentation), the edge is
//     parent node → server node with the server's operation and duration.
//     A parent in the same service makes no edge. Otherwise the span waits
//     for its parent. A server span without a parent makes no edge.
//   - Every non-client span is remembered for PairWait as a potential
//     parent in a fixed-size table of 32-byte slots (two per bucket, the
//     last two inserted win), sized to MaxPending. Under a load above its
//     capacity an old parent may be overwritten before PairWait; a server
//     span whose parent was lost that way waits like one whose parent
//     never came.
//   - A client span that nobody paired becomes, when it expires, a call to
//     the virtual node named by the first present of peer.service,
//     db.namespace, db.name, db.system, messaging.destination.name,
//     server.address (each looked up on the span, then on its resource);
//     without one it is counted in Stats.UnpairedClients. A server span
//     whose parent never came is counted in Stats.UnpairedServers.
//
// A span whose end equals its start and that carries the attribute
// flowscope.duration_unknown = true (DurationUnknownAttr, set by the Zipkin
// receiver on halves without their end annotation) counts as a call of its
// series and of the edges it makes, but its duration is not recorded: the
// rollup's Count then exceeds its histogram's total count.
//
// A held span is live for a span committed at c if it was committed at or
// after c-PairWait: whether two halves pair depends only on their commit
// times, not on when Expire ran. A client span whose ID is already held
// and live (a retried request stored twice) is not held again, so its call
// counts once; a duplicated server span counts as another call, like its
// duplicated series.
//
// The pairing queue (held clients, waiting servers) is bounded by
// MaxPending. Beyond it the oldest commit batch is evicted
// (Stats.Evicted) and resolved as Expire would: clients become virtual
// edges or unpaired, servers unpaired.
//
// # Provisional calls
//
// A client half that names its callee waits up to PairWait before it
// becomes a virtual call, but queries must show a call within a second of
// its acknowledgement. So, while it is held unpaired, it is a provisional
// call: Live returns, next to the open window deltas and under the same
// lock, windows of the provisional calls, one edge rollup per (source
// node, virtual target, operation) in the window of the client span's
// start (where its virtual call will be recorded), with its count, errors
// and duration histogram but no exemplars, retries or failed durations
// (Rollup.Retried, Rollup.Failed: they are added when the call is
// recorded). The accumulators merge them
// with AddProvisional, which also counts them in GraphEdge.Provisional and
// Latency.Provisional; they are included in the calls (the query API shows
// them as calls) and never persisted.
//
// Every call is counted exactly once at every instant: a provisional call
// leaves the provisional windows in the same step (under the aggregator's
// lock) as it is recorded, on its paired edge when a server half pairs it,
// or on its virtual edge when Expire, eviction or a later span with its ID
// resolves it, with the same count and duration (a paired call is also an
// error when its server half is). At a level where the virtual and the
// real callee have different names, a call thus moves from the virtual
// edge to the paired one (at the service level, with peer.service, they
// usually merge); an instrumented client whose server half comes later
// shows meanwhile on the edge to the name it gives its callee
// (server.address, say): GraphEdge.Provisional tells such calls apart.
// The store holds its catalog lock over Expire and Flush and over Live, so
// a query sees a resolved call either provisional or recorded, never both.
//
// The aggregator keeps a summary of the provisional calls (counts of
// calls, errors and clamped durations, and the durations by HDR bucket,
// which can be decremented, unlike a histogram), built lazily so that
// Apply pays nothing for it: each Live call first adds the clients queued
// since the previous one that are still provisional and marks them;
// pairing and resolving take a marked client out. A query thus costs the
// queue entries added since the last query plus the size of the summary,
// at most the number of held clients. What Live returns depends on the
// pairing state only, so the state rebuilt after a crash gives the same
// provisional calls (TestReplayEquivalence, TestProvisionalCalls).
//
// # Replay protocol
//
// The store calls Apply for every committed chunk, in sequence order, right
// after the commit; Expire(now) and Flush every second, persisting the
// returned windows together with the Checkpoint in one transaction. After a
// crash, a new Aggregator is given the chunks ReplayFrom..AppliedSeq
// through Rebuild, then EndRebuild(ExpiredBefore, AppliedSeq), then the
// chunks after AppliedSeq through Apply, before Expire is called again.
// The result equals that of a run without the crash exactly
// (TestReplayEquivalence), because:
//
//   - Pairing depends on commit times only (above), which Rebuild gets
//     back from the chunks.
//   - ReplayFrom is the first chunk committed at most PairWait before the
//     oldest state held at the Flush. Every span that met a held span,
//     or made one leave, was committed within PairWait of it, so replaying
//     from there rebuilds the held state exactly; the state older than the
//     oldest held at the Flush is dropped by EndRebuild (ExpiredBefore).
//     Replaying only from the oldest held state would be wrong: a client
//     that paired with a server that arrived before it leaves no held
//     server, and replayed alone it would become a second, virtual, call
//     (TestReplayNaiveCheckpointWouldBeWrong).
//   - Rebuild records nothing: what the replayed chunks contributed is in
//     the persisted windows.
//
// Exactness needs Expire(now) never to run with now above the commit time
// of a chunk applied after it (the store's commit timestamps come from the
// same clock, and its replay applies every chunk before the first Expire).
// It is lost, for the few halves involved, if the wall clock steps back, or
// when MaxPending evicts state: a rebuilt aggregator may pair a span with
// a half that the crashed one had evicted.
//
// # Memory
//
// An active series costs about 0.6 KB with 10 spans, 1.2 KB with 100,
// 3.1 KB with 1,000 and 5 KB with 10,000 spans of a multi-modal latency
// distribution (about 300 of its HDR buckets populated at 1,000 spans;
// BenchmarkRollupMemory). Each window delta holds its active series until
// the next Flush, so the open windows hold about one second of them.
//
// The pairing state costs about 170 bytes per held span
// (BenchmarkPendingMemory): an 80-byte entry in a ring buffer, and a 24-byte
// slot of a hash table at most 3/4 full, both sized in powers of two,
// plus the parent table's 32 bytes per slot. At the default MaxPending of
// one million that is about 200 MB; a rate of R client spans per second
// holds about R × PairWait of them, so the default is reached at 100,000
// client spans/s.
//
// # Encoding
//
// AppendWindow writes a window in this format (version 4), all integers
// varints (encoding/binary; "s" signed, zig-zag), output deterministic:
//
//	byte     version (4)
//	s        start (Unix seconds)
//	s        width (seconds, > 0)
//	u        number of strings, then each: u length, bytes (sorted)
//	u        number of nodes, then each (sorted):
//	           5 × u  string index of service, instance, zone, region, namespace
//	           byte   flags (1: virtual)
//	u        number of series, then each (sorted by node, operation, kind, status):
//	           u node index, u operation string index, s kind, s status, rollup
//	u        number of edges, then each (sorted by source, target, operation):
//	           u source node index, u target node index, u operation string index, rollup
//
//	rollup:  s count, s errors, s clamped, u body length, body:
//	           u number of buckets, then each (ascending):
//	             u value - previous value (the first from 0), u count (> 0)
//	           3 exemplar lists: the slowest (slowest first), the spread (one
//	           per octave band, by band), the failing (newest first), each:
//	             u number of exemplars, then each:
//	               16 bytes trace ID, 8 bytes span ID, s duration (ns),
//	               s start (Unix ns), byte flags (1: status ERROR)
//	           s retried calls
//	           u number of failed bands, then each (ascending band):
//	             u band (0-63), u count (> 0), s shortest, s longest duration (ns)
//
// A bucket is the lowest value of a populated HDR bucket and its count
// (PackedHistogram.ForEachBucket); DecodeWindow records them back into a
// histogram of the reader's Geometry, which restores every bucket, hence
// every quantile, exactly when the geometry is the writer's. The body
// length lets readers skip histograms they do not need (AddEncoded).
// Version 3 has no retried calls and failed bands; version 2 only the
// slowest exemplars, without flags; version 1 is version 2 without the
// body length. All are still read (their rollups have no spread or
// failing exemplars, retries or failed durations), and rollups merged from
// them are written as version 4. The store compresses whole records; nothing is
// compressed here.
//
// The spread and failing exemplars (version 3) let queries show a span of
// every mode of a distribution and a failing span, not only the tail
// (query/API.md, "modes", "errorExemplars"). They cost about 40 bytes per
// exemplar kept: a rollup with durations over k octaves grows by up to k
// exemplars (the slowest spans often are among them, but are stored in
// each list they belong to).
//
// Graph and latency encoding: AppendGraph and AppendLatency write query
// results (Graph, Latency) for a front end that merges those of several
// nodes, with the varints and the rollups of the window format, output
// deterministic:
//
//	byte     tag ('G' graph, 'L' latency; never a window version)
//	byte     version (1)
//	byte     significant digits (1-5), u max value (≥ 2), byte max exemplars (1-255)
//	graph:   s seconds
//	         u number of strings, then each: u length, bytes (in order of first use)
//	         u number of nodes, then each: 4 × u string index of ID, namespace,
//	           region, service, byte flags (1: virtual), s spans, s span errors,
//	           wire rollup (Requests)
//	         u number of edges, then each: u source, u target string index,
//	           byte flags (1: virtual), s provisional, wire rollup (Calls)
//	latency: s provisional, wire rollup (Total)
//	         u number of steps, then each: s start, wire rollup
//
//	wire rollup: byte flags (1: has a histogram; 2: exemplar cap unset;
//	           4: own exemplar cap, a byte (1-255) follows), then a rollup
//	           as in a window (version 4)
//
// Nodes, edges and steps keep their order. DecodeGraph and DecodeLatency
// restore every field exactly, a nil histogram as nil, and the rollups'
// merge state (exemplar cap, spread bands), so that decoded results merge
// as the originals would (Graph.Merge, Rollup.Merge).
//
// # Queries
//
// GraphAccumulator and LatencyAccumulator merge windows for the flow graph
// and latency APIs (DESIGN.md "Latency selection", "Flow graph shape").
// Graph nodes are identified by Node.ID: at the service and instance levels
// a node with a service.namespace is "namespace/name", so that same-named
// services of different namespaces stay apart; GraphQuery.Namespace scopes
// a graph to one namespace, and latency queries select by ID or plain name
// (Node.Is).
// They merge histograms into pooled dense HDR histograms, several times
// faster than merging packed ones, and convert back once in Result.
// AddEncoded merges an encoded window without building its Window first.
//
// # Concurrency and ownership
//
// An Aggregator is safe for concurrent use. Apply and Rebuild only read
// the Traces they are given, during the call. Windows returned by Flush,
// Open and Live belong to the caller. Rollups and Windows are not safe for
// concurrent mutation; accumulators only read the windows they are given,
// so decoded windows may be shared by concurrent queries.
package aggregate
