// Package otlpgrpc is the OTLP/gRPC receiver (port 4317): the TraceService
// and MetricsService Export methods of the OTLP specification.
//
// # Raw requests
//
// Export requests are not unmarshalled into Go structs here. A server codec
// (Codec) hands the handlers the raw protobuf bytes in a pooled buffer. The
// handlers check that they decode (otlpwire.ValidateTraces and
// ValidateMetrics: what proto.Unmarshal accepts, strings in UTF-8, messages
// nested at most otlpwire.MaxDepth deep), without building the message and
// exactly as the OTLP/HTTP receiver does, and answer INVALID_ARGUMENT,
// naming the problem, for a request that does not: the consumer never sees
// it. The consumer parses the bytes once (see otlpwire) and stores
// the bytes it accepts. Every other message on the same server (responses, and other
// services such as the query API) goes through the standard protobuf codec.
//
// # Answers
//
//	consumer result              gRPC answer
//	nil, Rejected == 0           OK, empty response
//	nil, Rejected > 0            OK, partial_success {rejected_spans|rejected_data_points, error_message}
//	(request does not decode)    INVALID_ARGUMENT, consumer not called
//	ingest.ErrInvalid            INVALID_ARGUMENT
//	ingest.ErrOverloaded         RESOURCE_EXHAUSTED with RetryInfo (retryable per the OTLP spec)
//	ingest.ErrUnavailable        UNAVAILABLE with RetryInfo
//	context cancelled/deadline   CANCELED / DEADLINE_EXCEEDED
//	other                        INTERNAL
//
// Messages over the server's MaxRecvMsgSize (the decompressed size) are
// refused by grpc-go with RESOURCE_EXHAUSTED before they reach a handler.
//
// # Memory budget
//
// With Options.Budget, the codec reserves a request's size from the
// process's memory budget before copying it, and the reservation is held
// until the consumer returned; a request that does not fit is answered
// RESOURCE_EXHAUSTED with RetryInfo without reaching the consumer. grpc-go
// reads a whole message before any handler runs, so OverloadTap, installed
// with grpc.InTapHandle, refuses new export streams the same way while
// the budget has less than 64 KiB free, before their messages are read.
package otlpgrpc
