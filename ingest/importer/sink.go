package importer

import (
	"context"
	"errors"
	"fmt"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/internal/otlpwire"
	"github.com/flowscope/flowscope/store"
)

// Sink receives what Import decoded. It is the consumer side of an import:
// the store (StoreSink), or a fake in tests.
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

// StoreSink returns a Sink that writes to db, translating the store's
// errors into ingest's classification: store.ErrOverloaded becomes
// ingest.ErrOverloaded, store.ErrClosed ingest.ErrUnavailable, and a
// malformed request, an item too large to store or an invalid
// architecture ingest.ErrInvalid, a full disk or a failed commit
// ingest.ErrUnavailable (the store errors stay in the chain).
func StoreSink(db *store.DB) Sink { return storeSink{db} }

// storeSink adapts a *store.DB to Sink.
type storeSink struct{ db *store.DB }

var _ Sink = storeSink{}

func (s storeSink) ConsumeTraces(ctx context.Context, req []byte) (ingest.Result, error) {
	res, err := s.db.WriteTraces(ctx, req)
	return ingest.Result{Rejected: res.Rejected, Message: res.Message}, classify(err)
}

func (s storeSink) ConsumeMetrics(ctx context.Context, req []byte) (ingest.Result, error) {
	res, err := s.db.WriteMetrics(ctx, req)
	return ingest.Result{Rejected: res.Rejected, Message: res.Message}, classify(err)
}

func (s storeSink) PutArchitecture(ctx context.Context, a store.Architecture) error {
	return classify(s.db.PutArchitecture(ctx, a))
}

// classify maps store errors to ingest's sentinels (the collector's
// receivers use StoreSink too).
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, otlpwire.ErrMalformed), errors.Is(err, store.ErrMalformedMetrics),
		errors.Is(err, store.ErrInvalidArchitecture), errors.Is(err, store.ErrTooLarge):
		return fmt.Errorf("%w: %w", ingest.ErrInvalid, err)
	case errors.Is(err, store.ErrOverloaded):
		return fmt.Errorf("%w: %w", ingest.ErrOverloaded, err)
	case errors.Is(err, store.ErrClosed), errors.Is(err, store.ErrDiskFull), errors.Is(err, store.ErrCommitFailed):
		return fmt.Errorf("%w: %w", ingest.ErrUnavailable, err)
	}
	return err
}

// retryable reports whether a sink error asks to repeat the call later.
func retryable(err error) bool {
	return errors.Is(err, ingest.ErrOverloaded) || errors.Is(err, ingest.ErrUnavailable)
}
