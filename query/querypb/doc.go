// Package querypb holds the protobuf definition of Flowscope's query API
// (query.proto, package flowscope.query.v1) and the code generated from it:
// messages (query.pb.go), the gRPC service (query_grpc.pb.go) and the
// grpc-gateway REST handlers (query.pb.gw.go). Everything but query.proto,
// query_gateway.yaml, buf.gen.yaml and this file is generated: do not edit
// it by hand. The service itself is implemented by package query.
//
// # Regenerating
//
// From the repository root run
//
//	make generate
//
// (or `go generate ./query/querypb`). It installs the pinned tools into .bin/
// with `go install` — buf v1.75.0, protoc-gen-go v1.36.12,
// protoc-gen-go-grpc v1.6.2 and protoc-gen-grpc-gateway v2.32.0 — and runs
// buf generate with buf.gen.yaml (paths=source_relative). The output is
// deterministic: a second run changes nothing, so CI can check it with
// `make generate && git diff --exit-code`.
//
// query.proto imports only google/protobuf/wrappers.proto (DoubleValue, for
// latency values that may be unknown: JSON null), not even the OTLP protos: GetTraceResponse
// carries the trace as encoded bytes of opentelemetry.proto.trace.v1.TracesData
// (decode with go.opentelemetry.io/proto/otlp/trace/v1).
//
// # HTTP mapping
//
// query_gateway.yaml (grpc-gateway's grpc_api_configuration) maps every RPC to
// a GET route under /api/v1; see package query for the routes, the JSON
// conventions and the error shape.
package querypb

//go:generate make -C ../.. generate
