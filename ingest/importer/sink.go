package importer

import (
	"context"
	"errors"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/store"
)

// Sink receives what Import decoded. It is the consumer side of an import:
// the store (storesink.Sink), or a fake in tests.
//
// Methods are called from the goroutine that runs Import, one at a time.
// They classify failures like ingest's consumers: an error wrapping
// ingest.ErrOverloaded or ingest.ErrUnavailable means nothing was stored
// and the call may be repeated (Import does, with backoff); any other error
// stops the import. A Sink must not retain req after it returns.
type Sink interface {
	// ConsumeTraces stores the valid spans of req, a protobuf-encoded
	// ExportTraceServiceRequest, and returns after they are durable.
	ConsumeTraces(ctx context.Context, req []byte) (ingest.Result, error)
	// ConsumeMetrics stores the valid points of req, a protobuf-encoded
	// ExportMetricsServiceRequest, and returns after they are durable.
	ConsumeMetrics(ctx context.Context, req []byte) (ingest.Result, error)
	// PutArchitecture stores a declared architecture, replacing one of the
	// same name.
	PutArchitecture(ctx context.Context, a store.Architecture) error
}

// retryable reports whether a sink error asks to repeat the call later.
func retryable(err error) bool {
	return errors.Is(err, ingest.ErrOverloaded) || errors.Is(err, ingest.ErrUnavailable)
}
