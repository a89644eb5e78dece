// Package membudget is the process-wide memory budget for data in flight.
//
// Every place that holds client data for a while takes its bytes from one
// Budget before it allocates them and gives them back when it lets them go:
// request bodies being read and decompressed by the receivers, requests
// waiting in the store's commit queue, and committed requests waiting for
// the aggregator. When a reservation does not fit, the caller refuses the
// work before reading or copying anything more, with a retryable answer
// (HTTP 429/503 with Retry-After, gRPC RESOURCE_EXHAUSTED with RetryInfo).
//
// The budget bounds what the process holds on behalf of clients; the rest
// of its memory (indexes, open rollup windows, caches, the Go runtime) is
// bounded by their own settings. docs/operations.md explains how to size it.
//
// A nil *Budget is unlimited: every method works on it and TryAcquire
// always succeeds, so tests and tools can pass nil.
package membudget

import (
	"fmt"
	"sync/atomic"
)

// Budget counts reserved bytes against a fixed limit. It is safe for
// concurrent use.
type Budget struct {
	limit   int64
	used    atomic.Int64
	peak    atomic.Int64
	refused atomic.Int64
}

// New returns a budget of limit bytes. limit must be positive.
func New(limit int64) *Budget {
	if limit <= 0 {
		panic(fmt.Sprintf("membudget: limit must be positive, got %d", limit))
	}
	return &Budget{limit: limit}
}

// TryAcquire reserves n bytes and reports whether they fit. A reservation
// that does not fit takes nothing. n ≤ 0 always fits.
func (b *Budget) TryAcquire(n int64) bool {
	if b == nil || n <= 0 {
		return true
	}
	for {
		used := b.used.Load()
		if used+n > b.limit {
			b.refused.Add(1)
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			b.notePeak(used + n)
			return true
		}
	}
}

// Acquire reserves n bytes even past the limit. It is for memory that is
// already held and must be accounted for (so that other reservations see
// it), never for new allocations on a client's behalf.
func (b *Budget) Acquire(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.notePeak(b.used.Add(n))
}

// Release gives back n bytes reserved earlier.
func (b *Budget) Release(n int64) {
	if b == nil || n <= 0 {
		return
	}
	if b.used.Add(-n) < 0 {
		panic("membudget: released more than was acquired")
	}
}

func (b *Budget) notePeak(v int64) {
	for {
		p := b.peak.Load()
		if v <= p || b.peak.CompareAndSwap(p, v) {
			return
		}
	}
}

// Limit returns the budget's size in bytes; 0 for a nil (unlimited) budget.
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// Used returns the bytes reserved now.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Peak returns the most bytes ever reserved at once.
func (b *Budget) Peak() int64 {
	if b == nil {
		return 0
	}
	return b.peak.Load()
}

// Refused returns how many reservations did not fit.
func (b *Budget) Refused() int64 {
	if b == nil {
		return 0
	}
	return b.refused.Load()
}
