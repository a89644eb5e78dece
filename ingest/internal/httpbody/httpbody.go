// Package httpbody reads the body of an ingest HTTP request, the one way
// every HTTP receiver (OTLP/HTTP, Zipkin) does it:
//
//   - the body is limited to maxBytes both as sent and after decompression,
//     and a declared Content-Length over the limit is refused before a byte
//     is read; a decompression bomb stops one byte past the limit;
//   - Content-Encoding gzip (x-gzip), deflate (zlib) or none (identity,
//     empty); any other is refused;
//   - memory comes from the process's budget (package budgetio): the first
//     step is reserved before reading, every growth as the bytes arrive;
//   - gzip readers are pooled.
//
// Read returns an *Error whose Kind the receiver maps to its protocol's
// answer (status code, body format, counted outcome). RetryAfter is the
// Retry-After value every receiver sends with a refusal it wants retried.
package httpbody

import (
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/ingest/internal/budgetio"
	"github.com/flowscope/flowscope/membudget"
)

// Kind classifies why a body could not be read.
type Kind int

// Kinds of Error.
const (
	// TooLarge: the body (declared, as sent or decompressed) exceeds the
	// limit. Receivers answer 413.
	TooLarge Kind = iota + 1
	// UnsupportedEncoding: a Content-Encoding other than gzip, deflate or
	// none. Receivers answer 415.
	UnsupportedEncoding
	// OverBudget: the memory budget cannot take the body now. Receivers
	// answer with a retry hint (RetryAfter).
	OverBudget
	// Invalid: the body does not decompress, or could not be read.
	// Receivers answer 400.
	Invalid
)

// Error is a body that could not be read: its Kind and a message for the
// client that names what was wrong.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Receiver is what every HTTP receiver keeps of its options: the body
// limit, the logger, the request counters and the memory budget.
type Receiver struct {
	MaxBody int64
	Logger  *slog.Logger
	Metrics *ingest.RequestMetrics
	Budget  *membudget.Budget
}

// NewReceiver returns the Receiver of options with their defaults filled
// in: a MaxBody of 0 or less becomes defaultMax, a nil logger discards,
// and the logger names the receiver (component).
func NewReceiver(component string, maxBody, defaultMax int64, logger *slog.Logger, metrics *ingest.RequestMetrics, budget *membudget.Budget) Receiver {
	if maxBody <= 0 {
		maxBody = defaultMax
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return Receiver{MaxBody: maxBody, Logger: logger.With("component", component), Metrics: metrics, Budget: budget}
}

// RetryAfter is the Retry-After header value of refusals to retry: whole
// seconds of ingest.RetryAfter, at least 1.
var RetryAfter = strconv.FormatInt(max(1, int64((ingest.RetryAfter+999_999_999)/1_000_000_000)), 10)

// Read reads r's body into buf (a pooled buffer, or nil) and returns it,
// decompressed and limited to maxBytes both as sent and after
// decompression. The buffer grows as the bytes arrive, each growth
// reserved from mem first; the declared Content-Length never sizes an
// allocation beyond the first step. The returned buffer (possibly a new
// one) is the caller's to pool even on failure.
func Read(r *http.Request, buf []byte, maxBytes int64, mem *budgetio.Reservation) ([]byte, *Error) {
	tooLarge := func(what string) *Error {
		return &Error{TooLarge, fmt.Sprintf("request body exceeds %d bytes%s", maxBytes, what)}
	}
	if r.ContentLength > maxBytes {
		return buf, tooLarge("")
	}
	if r.Body == nil {
		return buf, nil
	}
	ce := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	identity := false
	switch ce {
	case "", "identity", "none":
		identity = true
	case "gzip", "x-gzip", "deflate":
	default:
		return buf, &Error{UnsupportedEncoding, fmt.Sprintf("unsupported Content-Encoding %q: use gzip, deflate or none", ce)}
	}
	// Refuse before reading anything when the budget cannot take the
	// first step.
	hint := int64(-1) // a compressed body's length says little of its size
	if identity {
		hint = r.ContentLength
	}
	rd, ok := budgetio.Admit(mem, hint, maxBytes)
	if !ok {
		return buf, &Error{OverBudget, "memory budget in use"}
	}
	wire := &limitReader{r: r.Body, left: maxBytes}
	var src io.Reader = wire
	switch ce {
	case "gzip", "x-gzip":
		zr, err := getGzipReader(wire)
		if err != nil {
			if wire.exceeded() {
				return buf, tooLarge("")
			}
			return buf, &Error{Invalid, fmt.Sprintf("decompress gzip body: %v", err)}
		}
		defer putGzipReader(zr)
		src = zr
	case "deflate":
		zr, err := zlib.NewReader(wire)
		if err != nil {
			if wire.exceeded() {
				return buf, tooLarge("")
			}
			return buf, &Error{Invalid, fmt.Sprintf("decompress deflate body: %v", err)}
		}
		src = zr
	}
	plain := &limitReader{r: src, left: maxBytes}
	buf, err := rd.ReadAll(buf, plain)
	switch {
	case errors.Is(err, budgetio.ErrOverBudget):
		return buf, &Error{OverBudget, "memory budget in use"}
	case wire.exceeded():
		return buf, tooLarge("")
	case plain.exceeded():
		return buf, tooLarge(" after decompression")
	case err != nil && src != wire:
		return buf, &Error{Invalid, fmt.Sprintf("decompress %s body: %v", ce, err)}
	case err != nil:
		return buf, &Error{Invalid, fmt.Sprintf("read request body: %v", err)}
	}
	return buf, nil
}

// gzipPool holds gzip readers; each holds about 40 KiB of decompressor state.
var gzipPool sync.Pool

// getGzipReader returns a pooled gzip reader reading r. It reads the gzip
// header, so a body that is not gzip fails here.
func getGzipReader(r io.Reader) (*gzip.Reader, error) {
	if zr, ok := gzipPool.Get().(*gzip.Reader); ok {
		if err := zr.Reset(r); err != nil {
			putGzipReader(zr)
			return nil, err
		}
		return zr, nil
	}
	return gzip.NewReader(r)
}

// putGzipReader returns zr to the pool. It first points zr at an empty
// stream so the pool does not keep the request body reachable.
func putGzipReader(zr *gzip.Reader) {
	_ = zr.Reset(eofReader{}) // fails at once with io.EOF, as intended
	gzipPool.Put(zr)
}

// eofReader is an empty stream. It implements io.ByteReader so that
// gzip.Reader.Reset does not wrap it in a bufio.Reader.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
func (eofReader) ReadByte() (byte, error)  { return 0, io.EOF }

// errTooLarge is returned by a limitReader once its limit is passed.
var errTooLarge = errors.New("body too large")

// limitReader reads at most left+1 bytes from r and fails with errTooLarge
// once more than left bytes were read: unlike io.LimitReader it tells a body
// of exactly the limit from a longer one, and it never reads further, so a
// decompression bomb stops one byte past the limit.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, errTooLarge
	}
	return n, err
}

// exceeded reports whether more than the limit was read.
func (l *limitReader) exceeded() bool { return l.left < 0 }
