// Package promexport exposes the RED metrics (rate, errors, duration) of
// every service, call edge and operation in the Prometheus text format,
// version 0.0.4, for scraping at GET /api/v1/prometheus/metrics (NewHandler).
// Everything is computed from the store's live HDR rollups, the data of the
// flow graph (GET /api/v1/flowgraph) and latency (GET /api/v1/latency) APIs;
// nothing is recorded twice.
//
// # Metrics
//
// All are named flowscope_red_*: apart from the collector's self-metrics
// (flowscope_store_*, flowscope_aggregation_*, … on /metrics), which
// describe Flowscope, not the services it watches. (Grafana Tempo's
// traces_spanmetrics_* and traces_service_graph_* would make some Grafana
// panels light up, but with other labels and meanings: a status_code label
// instead of an error counter, server-side edge durations. Reusing them
// would break those panels quietly.)
//
// For each of PREFIX = flowscope_red_service, flowscope_red_edge,
// flowscope_red_operation:
//
//	PREFIX_requests_total              counter    spans (service, operation) or calls (edge)
//	PREFIX_errors_total                counter    those with status ERROR
//	PREFIX_duration_seconds            histogram  _bucket{le}, _sum, _count of the timed ones
//	PREFIX_duration_quantile_seconds   summary    {quantile}: over the quantile window; no _sum, _count
//
// and two series about the exposition itself:
//
//	flowscope_red_start_time_seconds   gauge  start (Unix s) of the first window counted (the origin)
//	flowscope_red_series_dropped       gauge  series left out by MaxSeries in this exposition
//
// Labels:
//
//   - service: {service} — a flow-graph node at the service level that has
//     spans of its own (not a virtual node: the calls into an uninstrumented
//     callee are its edges'), identified as the flow graph does: its
//     service.name, or namespace/name with a service.namespace. Requests are
//     its server-side spans (SERVER, CONSUMER), the node's requests.
//   - edge: {source, target} — node IDs at the service level, as the flow
//     graph gives them; calls to virtual nodes included, durations
//     client-side, provisional calls counted as the flow graph counts them.
//   - operation: {service, operation, kind} — a span name of a service,
//     listed by the store's operations, with kind server (SERVER, CONSUMER),
//     client (CLIENT, PRODUCER) or internal (INTERNAL, UNSPECIFIED): what
//     GET /api/v1/latency?service=&operation=&kind= selects. (Like that
//     query, a service named without a namespace also selects same-named
//     services of every namespace.)
//
// Label values are escaped as the text format wants (\\, \", \n), invalid
// UTF-8 replaced by U+FFFD.
//
// # Counters
//
// The counters and the histograms' buckets, _sum and _count count the
// rollup windows (10 s, by span start time; an edge by its client span's
// start) from the origin — the start of the window holding the moment
// NewHandler ran, exposed as flowscope_red_start_time_seconds — to the
// scrape. A restart begins again from a new origin (a counter reset).
//
// Windows older than Options.Settle (5 minutes by default; rounded down to
// the minute) are folded once into an in-memory base; newer ones are read
// at every scrape, the open window included, so a counter is as fresh as
// the flow graph: every acknowledged span is in the next scrape. Hence a
// counter equals what the flow graph (or /latency) reports for [origin,
// now], except for spans stored for a window after it was folded (a span
// committed more than Settle after its start, or an edge resolved that
// late): those are counted by the flow graph and not here. Rollup retention
// takes nothing away, since folded windows are never read again, and a
// gap between scrapes loses nothing the store still holds (folds read the
// coarsest rollup tier, hourly windows, kept 90 days by default).
//
// Counters never go down while the process runs: each value exposed is at
// least the one exposed before (a held maximum). The flow graph can take a
// call back from an edge — a provisional call to a virtual node that moves
// to the edge of its server half, when the two names differ — and such an
// edge then keeps the count it showed until new calls bring it back to the
// flow graph's.
//
// # Histograms
//
// The classic buckets come from the HDR histograms, exactly at their
// resolution: le=b counts the spans whose HDR bucket's highest equivalent
// value is at most b, which is the value GET /api/v1/latency reports for
// them. An HDR bucket spans less than 1/2^k of its values with
// k = ceil(log2(2·10^d)) − 1 for d significant digits (1/128 at the default
// 2): a span within that of a bound, above or below, may count on the
// other side of it. _sum takes each span as its HDR bucket's median value;
// _count and the +Inf bucket count the spans with a known duration, which
// PREFIX_requests_total exceeds by the spans of unknown duration (one-way
// messages, Zipkin halves without their end). Durations above the
// aggregation's max_latency count as that.
//
// # Quantiles
//
// PREFIX_duration_quantile_seconds{quantile} are computed from the HDR data
// of the last Options.QuantileWindow (whole 10-second windows, from the one
// holding now − window to the open one), as GET /api/v1/latency computes
// them: the nearest rank ⌈q·n⌉, the highest value of its HDR bucket. They
// are never averaged. NaN when the window has no timed span.
//
// # Cardinality
//
// Every service, edge or operation has 2 + (buckets+1) + 2 + quantiles
// series (19 by default). An exposition holds at most Options.MaxSeries
// series, the two above included (they are there even when MaxSeries is
// less): services first, sorted by name, then edges by source and target,
// then operations by service, operation and kind; the first that fit are
// exposed whole, the rest left out and counted in
// flowscope_red_series_dropped (a warning is logged when that starts). An
// operation is only exposed if it had spans since the origin, which is
// only known once it is queried: operations left out unqueried count in
// flowscope_red_series_dropped all the same. An operation left out forgets
// its state; should it be exposed again, its counters are computed afresh
// from the origin.
//
// # Cost
//
// A scrape runs two flow-graph queries (the counters' recent windows, the
// quantile window), one operation listing per service and one or two
// latency queries per operation (two when it has recent timed spans), plus,
// once a minute, a flow-graph query and one latency query per operation
// for the windows that settled. The store has no query that returns every
// operation's rollup at once, so operations dominate the cost
// (BenchmarkScrape).
//
// # Concurrency
//
// A handler is safe for concurrent use; scrapes are served one at a time.
package promexport
