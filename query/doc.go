// Package query serves Flowscope's query API: Service implements the gRPC
// service flowscope.query.v1.QueryService (package querypb) over a Store,
// NewGatewayHandler serves the same service as REST/JSON through
// grpc-gateway, and RegisterGRPC registers it on a grpc.Server.
//
// API.md beside this file documents every endpoint with examples.
//
// # REST routes
//
// All are GET but rules:reload (POST), relative to the API root
// (http://127.0.0.1:8686 by default):
//
//	/api/v1/services                       ListServices    ?start=&end=
//	/api/v1/services/{service}/operations  ListOperations
//	/api/v1/traces/{traceId}               GetTrace        (OTLP/JSON body)
//	/api/v1/traces                         SearchTraces    ?service=&operation=&start=&end=&minDuration=&maxDuration=&attr.KEY=VALUE&limit=
//	/api/v1/correlations/{id}              GetCorrelation  ?limit=
//	/api/v1/metrics                        ListMetrics     ?start=&end=
//	/api/v1/metrics/{name}                 GetMetric       ?start=&end=&quantiles=0.5,0.99
//	/api/v1/flowgraph                      GetFlowGraph    ?start=&end=&level=&operation=&format=json|vizceral&compare=
//	/api/v1/latency                        GetLatency      ?service=&operation=&kind=&source=&target=&level=&quantiles=&step=&start=&end=&format=json|hdrlog
//	/api/v1/architectures                  ListArchitectures
//	/api/v1/rules                          ListRules
//	/api/v1/alerts                         ListAlerts      ?rule=&state=pending|firing
//	/api/v1/alerts/history                 GetAlertHistory ?rule=&start=&end=&limit=
//	/api/v1/rules:reload                   ReloadRules     (POST)
//
// A path segment may hold an escaped slash (%2F), which is decoded; metric
// names may also contain raw slashes (/api/v1/metrics/a/b is metric "a/b").
//
// Query parameters may be spelled in lowerCamelCase (minDuration) or as the
// proto field name (min_duration). Unknown parameters, and a parameter given
// twice, are rejected with 400.
//
// # Parameters
//
//   - start, end: RFC 3339 ("2024-05-01T12:00:00Z", fractions allowed) or Unix
//     milliseconds (digits only). A missing end is now, a missing start is end
//     minus 15 minutes (DefaultRange). end before start is a 400.
//   - limit: default 20, at most 1000 (store.DefaultSearchLimit,
//     store.MaxSearchLimit).
//   - minDuration, maxDuration: Go duration strings ("250us", "150ms",
//     "1.5s"); integers without a unit are rejected.
//   - attr.KEY=VALUE: the span or its resource must have string attribute KEY
//     (which may contain dots) equal to VALUE; repeat for several.
//   - traceId: 32 hex digits, or 16 (a 64-bit ID, left-padded with zeros to
//     32 as the store keeps it). Case is ignored; all zeros is invalid.
//   - quantiles: fractions in [0, 1], comma-separated or repeated; default
//     0.5, 0.9, 0.99, 0.999.
//   - level: service (default), instance, zone, region or namespace.
//   - kind (latency of a service): server (SERVER and CONSUMER spans, the
//     default), client (CLIENT and PRODUCER), internal or all.
//   - step (latency series): a Go duration, a multiple of 10s (StepUnit),
//     at most MaxSteps steps in the range.
//   - format: json (default); vizceral for the flow graph, hdrlog for
//     latency.
//   - compare (flow graph): the name of a declared architecture
//     (store.Architecture) to compare the observed graph with: edges get
//     declared = both, declared_only (added, no calls) or observed_only,
//     declared nodes that were not observed are added with declaredOnly, and
//     comparison counts the edges of each kind (see compare.go). Not with
//     format=vizceral.
//
// # Responses
//
// Responses are protojson with lowerCamelCase names and every field present
// (EmitUnpopulated), so zero counts read "0" and empty lists []; 64-bit
// integers (times in Unix nanoseconds, durations in nanoseconds, counts) are
// JSON strings, as in OTLP/JSON. IDs are lowercase hex. GetTrace is the
// exception: its body is the trace itself as OTLP/JSON TracesData,
// {"resourceSpans":[…]} with hex IDs; gRPC clients receive the same
// TracesData protobuf-encoded in GetTraceResponse.traces_data.
//
// The flow graph and latency responses are the other exceptions: their
// counts, rates and nanosecond durations are JSON numbers (the messages use
// double), their times RFC 3339 strings. A latency value (quantile, min,
// mean, max) is a google.protobuf.DoubleValue, JSON null when it is unknown:
// when none of the calls it describes has a measured duration (no calls, or
// only spigo one-way messages and other Zipkin halves without their end);
// timedCalls (flow graph) and timedCount (latency) count the calls the
// values are computed from. A latency series has one step per step of the
// range, empty steps included. GetFlowGraph with format=vizceral
// answers Vizceral's traffic-graph JSON document itself (see vizceral.go),
// GetLatency with format=hdrlog the HdrHistogram interval log as text/plain;
// gRPC clients find these in vizceral_json and hdr_log. Latency quantiles are
// nearest-rank values (rank ceil(q·n)) read from the HDR histograms, each with the HDR bucket holding
// it ([from, to], errorBound its width), computed by merging the store's
// PackedHistogram into a dense Histogram.
//
// Histogram points carry their non-empty buckets and quantiles estimated by
// linear interpolation inside the bucket (Prometheus histogram_quantile
// semantics, then clamped to the point's min and max); summary points carry
// their own quantiles.
//
// # Errors
//
// Service methods return gRPC status errors: InvalidArgument with a message
// naming the parameter ("invalid limit 5000: must be at most 1000"), NotFound
// for an unknown trace or architecture, Internal for store failures (which are logged). Over
// REST every error, including unknown paths (404) and methods other than GET
// (405), is answered with the matching HTTP status and the body
//
//	{"code": 400, "message": "invalid limit 5000: must be at most 1000"}
//
// where code repeats the HTTP status.
package query
