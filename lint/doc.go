// Package lint checks an observed flow graph against architecture rules
// (DESIGN.md, "Architecture rules (contract)"): long synchronous call
// chains, large fan-out and fan-in, dependency cycles, single points of
// failure, low estimated availability, timeouts that do not cover their
// callee's own timeouts and retries, and retry storms. Run is a pure
// function of a Graph and per-rule Settings; it does no I/O and keeps no
// state, and it is safe for concurrent use.
//
// # Input
//
// Nodes are identified by ID; a node named only by an edge is added as a
// plain node. Edges are merged by (Source, Target): Calls, Errors, Retried
// and Attempts summed, the largest P99 and TimeoutNs kept, Async only if
// every merged edge is, and the least non-empty Exemplar. The error rate
// of an edge is Errors/Calls (0 without calls). Every walk visits nodes in
// the order of their IDs and edges in the order of their targets' IDs, so
// the result does not depend on the input order, and findings are sorted
// by rule (Rules order), severity (critical, warning, info), nodes, edges
// and message.
//
// # Entry nodes
//
// single_point and availability start from the entry nodes: the nodes
// marked Entry, or, when none is marked, every node without a caller (a
// self-call does not count). A graph whose every node has a caller and
// none is marked has no entry nodes, and these two rules find nothing.
//
// # chain_depth
//
// Value is the number of hops of the longest synchronous call path;
// flagged when above the threshold (default 5). When Graph.Paths holds a
// path of two nodes or more, the longest observed path is used (ties: more
// requests, then the least node list) and the message says "observed in
// traces". Otherwise it is the longest path over the synchronous edges
// (Async false) that join different strongly connected components of the
// synchronous graph: the condensation, whose edges are kept as the edges
// between their own nodes, so that the path is a simple path of real
// edges and the search terminates (edges inside a cycle are not counted;
// the cycle rule reports them). It is found by dynamic programming over
// the components in topological order (ties: the larger sum of known
// p99s, then the least node IDs) and the message says "graph path, not
// seen as one request". LatencyNs is the sum of the P99s of the path's
// edges whose P99 is known; the message says on how many hops it is not.
//
// # fan_out and fan_in
//
// Value is the number of distinct callees (fan_out) or callers (fan_in)
// of a node, over all edges (asynchronous ones and virtual callees
// included) except a self-call; flagged when above the threshold (default
// 10). Nodes holds the node, then its callees or callers.
//
// # cycle
//
// Every strongly connected component of more than one node, over all
// edges, found by Tarjan's algorithm with an explicit stack (no recursion,
// so graphs of any size), and every self-call, each one finding. Value is
// the number of nodes (1 for a self-call); flagged when above the
// threshold (default 0: all). Nodes and Edges are the cycle's; the message
// counts its asynchronous edges.
//
// # single_point
//
// A node d is a single point when removing it cuts an entry node off from
// a node the entry reached before, over all edges. For each entry s the
// dominator tree of the nodes reachable from s is computed by the
// iterative algorithm of Cooper, Harvey and Kennedy; the nodes d cuts off
// from s are the nodes of d's subtree except d, and d = s is skipped (an
// entry is not a single point of its own reach). Value is the number of
// nodes in the union of these sets over all entries; flagged when above
// the threshold (default 0). Nodes holds d, then the nodes cut off (at
// most 100, those with the least IDs; the message says how many more);
// Edges are d's edges to the listed nodes. The cost is O(entries × edges
// × passes) for the trees (passes is small in practice, 2 or 3) plus the
// number of (single point, node cut off) pairs, at most nodes × the depth
// of the dominator trees.
//
// # availability
//
// For each entry node, the estimated success rate of a request, from the
// error rates of the synchronous edges of its call tree taken in series:
//
//	success(n) = Π over synchronous out-edges e = n → c of (1 − errorRate(e)) × success(c)
//
// with success(n) = 1 for a node without synchronous callees. The
// recursion follows a depth-first search from the entry that visits edges
// in the order of their targets' IDs: an edge back to a node on the search
// path (a cycle or a self-call) contributes 1, and a node reached along
// several paths contributes once per path (its success is computed once
// and reused). Value is the estimate; flagged when below the threshold
// (default 0.99). The node's own errors (Node.Errors) are not part of the
// estimate; the message shows the success rate observed at the entry when
// Node.Requests is known. Observed paths (Graph.Paths) are not used: the
// graph formula is the definition.
//
// # timeout_budget
//
// A synchronous edge A → B with an inferred timeout tAB (Edge.TimeoutNs >
// 0) is flagged when tAB ≤ Threshold × budget(B) (default threshold 1),
// where budget(B) is the largest tBC × attempts(B → C) over B's synchronous
// out-edges with an inferred timeout, attempts being Edge.Attempts (1 when
// unknown). "Upstream timeout must always be longer than total downstream
// timeout × retries": otherwise A gives up while B still waits on or
// retries C, and B's work is wasted. Value is tAB and Threshold is
// Threshold × budget(B), both in ns; Nodes are A, B and the C of the
// budget.
//
// # retry_storm
//
// Per edge, Value is the share of retried calls, Retried/Calls; flagged
// when above the threshold (default 0.10). Amplification is the edge's
// Edge.Attempts (calls A → B per request into A; 0 when unknown), also in
// the message.
//
// # Settings
//
// Run takes a Setting per rule; a rule missing from the map takes its
// default (Defaults). A given Setting replaces the default whole (so
// Enabled must be set), except that an empty Severity takes the default
// one. A NaN or infinite threshold disables the rule. The default
// severities: availability and timeout_budget are critical (requests fail,
// or work is certainly wasted); fan_in is info (a shared service, such as
// a database or an authentication service, has many callers by design);
// the others are warnings.
package lint
