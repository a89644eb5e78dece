// Package otelcoltest holds the OpenTelemetry Collector configuration of
// the scale-out test and benchmark (docs/scale-out.md): OTLP/gRPC in, the
// load-balancing exporter routing by trace ID to Flowscope nodes, each
// node's exporter retrying from a queue so that a node's restart loses
// nothing the Collector acknowledged.
package otelcoltest

import (
	"fmt"
	"strconv"
	"strings"
)

const config = `receivers:
  otlp:
    protocols:
      grpc: {endpoint: %q}
exporters:
  load_balancing:
    routing_key: traceID
    protocol:
      otlp:
        timeout: 5s
        tls: {insecure: true}
        retry_on_failure: {enabled: true, initial_interval: 200ms, max_interval: 2s, max_elapsed_time: 10m}
        sending_queue: {enabled: true, num_consumers: %d, queue_size: %d}
    resolver:
      static:
        hostnames: [%s]
service:
  telemetry:
    metrics: {level: none}
    logs: {encoding: json}
  pipelines:
    traces: {receivers: [otlp], exporters: [load_balancing]}
`

// Config returns the Collector's configuration: its OTLP/gRPC receiver on
// listen (host:port), the nodes' OTLP/gRPC host:port, and each node's
// queue: consumers and queue_size (requests). The Collector logs JSON and
// serves no self-metrics.
func Config(listen string, nodes []string, consumers, queueSize int) string {
	q := make([]string, len(nodes))
	for i, n := range nodes {
		q[i] = strconv.Quote(n)
	}
	return fmt.Sprintf(config, listen, consumers, queueSize, strings.Join(q, ", "))
}
