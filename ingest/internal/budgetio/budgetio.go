// Package budgetio reads request bodies into memory within the process's
// memory budget (package membudget). The receivers share it so that every
// body is read the same way:
//
//   - before a byte is read, Admit reserves a first step from the budget (at
//     most InitialBytes, less when a smaller Content-Length is declared);
//   - the buffer then grows only as bytes actually arrive, by doubling, and
//     every growth is reserved before it is allocated (while the old buffer
//     is copied into the new one, both count);
//   - a reservation that does not fit refuses the body before it is read
//     (Admit) or stops the reading at once (ErrOverBudget); the receivers
//     answer both with a retry hint.
//
// A client's Content-Length is therefore only ever an upper bound: a slow
// client claiming 16 MiB costs what it has sent, rounded up to a power of
// two, and never more than its reservation.
//
// The buffers are pooled (GetBuffer, PutBuffer) in a bounded free list:
// at most PoolSlots buffers of at most MaxPooledBytes each, so the pool
// keeps at most PoolSlots×MaxPooledBytes outside the budget.
package budgetio

import (
	"errors"
	"io"

	"github.com/flowscope/flowscope/membudget"
)

// ErrOverBudget is returned by ReadAll when the memory budget cannot cover
// the next growth of the buffer.
var ErrOverBudget = errors.New("memory budget exhausted")

// errPastMax means a reader yielded more than the maxBytes+1 bytes its
// caller promised (a reader without a limit).
var errPastMax = errors.New("budgetio: reader yielded more than maxBytes+1 bytes")

// InitialBytes is the most reserved, and allocated, for a body before any
// of it has arrived.
const InitialBytes = 64 << 10

// Reservation is the part of a budget held by one request. The zero value
// with a nil Budget reserves from an unlimited budget. It is not safe for
// concurrent use; a request's handler owns it and calls Release when the
// request is answered.
type Reservation struct {
	// Budget is the budget reserved from; nil is unlimited.
	Budget *membudget.Budget
	held   int64
}

// Grow reserves n more bytes and reports whether they fit. A reservation
// that does not fit takes nothing.
func (r *Reservation) Grow(n int64) bool {
	if n <= 0 {
		return true
	}
	if !r.Budget.TryAcquire(n) {
		return false
	}
	r.held += n
	return true
}

// Hold counts n more bytes even past the limit: memory already allocated
// (for example a conversion's output) that other reservations must see.
func (r *Reservation) Hold(n int64) {
	if n <= 0 {
		return
	}
	r.Budget.Acquire(n)
	r.held += n
}

// Shrink gives back n of the bytes held (at most all of them).
func (r *Reservation) Shrink(n int64) {
	n = min(n, r.held)
	if n <= 0 {
		return
	}
	r.Budget.Release(n)
	r.held -= n
}

// Held returns the bytes held now.
func (r *Reservation) Held() int64 { return r.held }

// Release gives back everything held. The Reservation may be used again.
func (r *Reservation) Release() { r.Shrink(r.held) }

// Body reads one request body within a Reservation: Admit it before
// reading anything, then ReadAll.
type Body struct {
	res      *Reservation
	reserved int64 // bytes of res covering the buffer, which never grows past them
	ceiling  int64 // most bytes the buffer should need
	maxBytes int64
}

// Admit reserves from res the first step of a body (InitialBytes, or
// sizeHint+1 when smaller) before any of it is read, and reports whether
// it fit; when it did not, nothing is reserved and the request should be
// refused. sizeHint is the declared Content-Length of an uncompressed
// body, ≤ 0 when unknown or compressed: it only ever lowers the growth
// steps. maxBytes is the most the body's reader yields before it fails:
// the buffer never grows past maxBytes+1.
func Admit(res *Reservation, sizeHint, maxBytes int64) (Body, bool) {
	b := Body{res: res, ceiling: maxBytes + 1, maxBytes: maxBytes}
	if sizeHint > 0 && sizeHint < maxBytes {
		// One byte past the hint lets the read that reports io.EOF
		// happen without another step.
		b.ceiling = sizeHint + 1
	}
	first := min(int64(InitialBytes), b.ceiling)
	if !res.Grow(first) {
		return Body{}, false
	}
	b.reserved = first
	return b, true
}

// ReadAll appends src, read to io.EOF, to buf[:0] and returns the result,
// growing it only as bytes arrive and reserving each growth first, as the
// package documentation describes. The returned slice may be a new array;
// buf's capacity beyond what is reserved is never read into. On
// ErrOverBudget nothing more is read from src. Errors of src are returned
// as they are, io.EOF excepted. The reservation covers the returned
// buffer until the caller releases it.
func (b *Body) ReadAll(buf []byte, src io.Reader) ([]byte, error) {
	buf = buf[:0]
	if b.reserved > int64(cap(buf)) {
		buf = make([]byte, 0, b.reserved)
	}
	for {
		if int64(len(buf)) == b.reserved {
			next := min(2*b.reserved, b.ceiling)
			if next <= b.reserved {
				// The hint was low (a reader that yields more than
				// declared): grow on, up to maxBytes+1.
				b.ceiling = b.maxBytes + 1
				next = min(2*b.reserved, b.ceiling)
				if next <= b.reserved {
					return buf, errPastMax
				}
			}
			var err error
			if buf, err = growTo(buf, next, b.reserved, b.res); err != nil {
				return buf, err
			}
			b.reserved = next
		}
		n, err := src.Read(buf[len(buf):b.reserved])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// growTo reserves next−reserved more bytes and makes buf's capacity at
// least next. When it must reallocate, the old array counts too while it
// is copied.
func growTo(buf []byte, next, reserved int64, res *Reservation) ([]byte, error) {
	if !res.Grow(next - reserved) {
		return buf, ErrOverBudget
	}
	if int64(cap(buf)) >= next {
		return buf, nil
	}
	old := int64(len(buf))
	if !res.Grow(old) {
		res.Shrink(next - reserved)
		return buf, ErrOverBudget
	}
	nb := make([]byte, len(buf), next)
	copy(nb, buf)
	res.Shrink(old)
	return nb, nil
}

// MaxPooledBytes is the largest buffer capacity the pool keeps; larger
// buffers are left to the garbage collector.
const MaxPooledBytes = 1 << 20

// PoolSlots is the most buffers the pool keeps.
const PoolSlots = 32

// pool is a bounded free list; a channel of slices puts and gets without
// allocating.
var pool = make(chan []byte, PoolSlots)

// GetBuffer returns an empty buffer from the pool, or nil when the pool
// is empty (ReadAll allocates as needed).
func GetBuffer() []byte {
	select {
	case b := <-pool:
		return b
	default:
		return nil
	}
}

// PutBuffer returns b to the pool unless it is larger than MaxPooledBytes
// or the pool is full. The caller must not use b afterwards.
func PutBuffer(b []byte) {
	if cap(b) == 0 || cap(b) > MaxPooledBytes {
		return
	}
	select {
	case pool <- b[:0]:
	default:
	}
}
