package lint_test

import (
	"fmt"
	"math"

	"github.com/flowscope/flowscope/lint"
)

// ExampleRun lints a small graph: a front end whose gateway times out
// before the service behind it has finished its retries.
func ExampleRun() {
	g := lint.Graph{
		Nodes: []lint.Node{{ID: "web", Entry: true}, {ID: "gateway"}, {ID: "orders"}, {ID: "db", Virtual: true}},
		Edges: []lint.Edge{
			{Source: "web", Target: "gateway", Calls: 1000, Errors: 3, P99: 120e6, Attempts: 1, TimeoutNs: 100e6},
			{Source: "gateway", Target: "orders", Calls: 1400, Errors: 20, P99: 90e6, Retried: 400, Attempts: 1.4, TimeoutNs: 80e6},
			{Source: "orders", Target: "db", Calls: 1400, P99: math.NaN(), Attempts: 1},
		},
	}
	for _, f := range lint.Run(g, nil) {
		fmt.Printf("%s (%s): %s\n", f.Rule, f.Severity, f.Message)
	}
	// Output:
	// single_point (warning): Losing gateway cuts entry web off from 2 nodes reached only through it: db and orders.
	// single_point (warning): Losing orders cuts entry web off from 1 node reached only through it: db.
	// availability (critical): Entry web has an estimated success rate of 98.276 %, below 99 %, from the error rates of its 3 synchronous call edges in series; the worst is gateway → orders, failing 1.43 % of 1400 calls.
	// timeout_budget (critical): web → gateway times out after 100 ms, not longer than gateway's own downstream budget of 112 ms (gateway → orders: timeout 80 ms × 1.4 attempts), so web gives up while gateway still works for it.
	// retry_storm (warning): 28.6 % of the 1400 calls gateway → orders are retries, above 10 %; each request into gateway makes 1.4 calls to orders.
}
