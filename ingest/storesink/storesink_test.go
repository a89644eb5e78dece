package storesink

import (
	"errors"
	"fmt"
	"testing"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/otlpwire"
	"github.com/flowscope/flowscope/store"
)

func TestClassify(t *testing.T) {
	other := errors.New("something else")
	tests := []struct {
		err  error
		want error // the ingest sentinel; nil: none
	}{
		{fmt.Errorf("parse: %w", otlpwire.ErrMalformed), ingest.ErrInvalid},
		{store.ErrMalformedMetrics, ingest.ErrInvalid},
		{store.ErrInvalidArchitecture, ingest.ErrInvalid},
		{store.ErrTooLarge, ingest.ErrInvalid},
		{store.ErrOverloaded, ingest.ErrOverloaded},
		{store.ErrClosed, ingest.ErrUnavailable},
		{fmt.Errorf("commit: %w", store.ErrDiskFull), ingest.ErrUnavailable},
		{store.ErrCommitFailed, ingest.ErrUnavailable},
		{other, nil},
	}
	sentinels := []error{ingest.ErrInvalid, ingest.ErrOverloaded, ingest.ErrUnavailable}
	for _, tc := range tests {
		got := Classify(tc.err)
		if !errors.Is(got, tc.err) {
			t.Errorf("Classify(%v) = %v: the store error left the chain", tc.err, got)
		}
		for _, s := range sentinels {
			if errors.Is(got, s) != (s == tc.want) {
				t.Errorf("Classify(%v) = %v: errors.Is(%v) = %v", tc.err, got, s, errors.Is(got, s))
			}
		}
	}
	if Classify(nil) != nil {
		t.Error("Classify(nil) != nil")
	}
}
