// Package fanout is Flowscope's scale-out query path: the peer API each
// node serves (NewPeerHandler) and the query front end's Store, which asks
// every node of a cluster and merges their answers losslessly (Store).
//
// Several nodes sit behind the OpenTelemetry Collector's load-balancing
// exporter, which routes spans by trace ID: both halves of a call share a
// trace ID, so every call edge is paired on one node, and each node's
// flow graph and latency rollups are exact for the traces it owns. The
// front end merges the nodes' HDR histograms bucket by bucket (never
// averaging quantiles), adds their counts, merge-sorts their search
// results and re-applies the limit, and concatenates the parts of a trace
// held by several nodes. Every answer of the front end's query API is then
// computed, by package query, from the merged values exactly as one node
// computes it from its own.
//
// A node that does not answer within the peer timeout is left out and
// named: the Tracker in the request's context collects the missing peers,
// and Middleware and UnaryInterceptor report them to
// clients (the members "partial" and "missingPeers" of JSON answers, the
// Flowscope-Partial and Flowscope-Missing-Peers HTTP headers, the
// flowscope-partial and flowscope-missing-peers gRPC header metadata). An
// answer is never silently incomplete. Callers that must not act on a
// partial view (alert evaluation) use Strict, which turns a missing peer
// into an error.
//
// The peer API is internal to a cluster and versioned by its path
// (/api/v1/peer/); its wire format is in peer.go.
package fanout
