// Package storesink connects ingest to the store: Sink writes what the
// receivers (OTLP/gRPC, OTLP/HTTP, Zipkin) and the importer decoded to a
// *store.DB, and classifies the store's errors into ingest's sentinels, so
// that every receiver answers a store failure the same way (retry later,
// bad request, or internal error).
package storesink

import (
	"context"
	"errors"
	"fmt"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/otlpwire"
	"github.com/flowscope/flowscope/store"
)

// Sink writes to a store. It implements ingest.TracesConsumer,
// ingest.MetricsConsumer and the importer's Sink and MarkSink. Its
// methods are safe for concurrent use.
type Sink struct{ db *store.DB }

// New returns a Sink writing to db.
func New(db *store.DB) *Sink { return &Sink{db: db} }

// ConsumeTraces stores the valid spans of req, a protobuf-encoded
// ExportTraceServiceRequest, and returns once they are durable.
func (s *Sink) ConsumeTraces(ctx context.Context, req []byte) (ingest.Result, error) {
	res, err := s.db.WriteTraces(ctx, req)
	return ingest.Result{Rejected: res.Rejected, Message: res.Message}, Classify(err)
}

// ConsumeMetrics stores the valid points of req, a protobuf-encoded
// ExportMetricsServiceRequest, and returns once they are durable.
func (s *Sink) ConsumeMetrics(ctx context.Context, req []byte) (ingest.Result, error) {
	res, err := s.db.WriteMetrics(ctx, req)
	return ingest.Result{Rejected: res.Rejected, Message: res.Message}, Classify(err)
}

// PutArchitecture stores a declared architecture, replacing one of the
// same name.
func (s *Sink) PutArchitecture(ctx context.Context, a store.Architecture) error {
	return Classify(s.db.PutArchitecture(ctx, a))
}

// WithImportMark returns a context that makes the next ConsumeTraces or
// ConsumeMetrics called with it also store value under key, in the same
// transaction as its items (store.WithImportMark).
func (s *Sink) WithImportMark(ctx context.Context, key, value []byte) context.Context {
	return store.WithImportMark(ctx, key, value)
}

// ImportMark returns the import mark stored under key, nil if none.
func (s *Sink) ImportMark(key []byte) ([]byte, error) { return s.db.ImportMark(key) }

// DeleteImportMark deletes the import mark under key.
func (s *Sink) DeleteImportMark(key []byte) error { return s.db.DeleteImportMark(key) }

// Classify maps a store error to ingest's sentinels, keeping the store
// error in the chain: a malformed request, an item too large to store or
// an invalid architecture wrap ingest.ErrInvalid; store.ErrOverloaded
// wraps ingest.ErrOverloaded; a closed store, a full disk or a failed
// commit wrap ingest.ErrUnavailable. Other errors are returned as they are.
func Classify(err error) error {
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
