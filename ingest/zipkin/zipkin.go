package zipkin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/flowscope/flowscope/ingest"
)

// Version is the Zipkin JSON model of an input.
type Version int

// The two Zipkin JSON models.
const (
	// V1 is the Zipkin v1 model: spans with cs/sr/ss/cr annotations and
	// binaryAnnotations, one object possibly holding both halves of a call
	// (POST /api/v1/spans; spigo's flow files).
	V1 Version = 1
	// V2 is the Zipkin v2 model: one object per span side, with kind,
	// localEndpoint, remoteEndpoint and tags (POST /api/v2/spans).
	V2 Version = 2
)

// String returns "zipkin v1" or "zipkin v2", the prefix of error messages.
func (v Version) String() string {
	switch v {
	case V1:
		return "zipkin v1"
	case V2:
		return "zipkin v2"
	}
	return fmt.Sprintf("zipkin version %d", int(v))
}

// Defaults of Options.
const (
	// DefaultBatchSpans is the most OTLP spans per emitted request when
	// Options.BatchSpans is 0.
	DefaultBatchSpans = 4096
	// DefaultKeepIDs is the number of converted spans remembered for
	// parent resolution across batches when Options.KeepIDs is 0. Each
	// entry takes about 100 bytes, so the default costs about 6.5 MB.
	DefaultKeepIDs = 1 << 16
	// MaxBatchSpans is the largest Options.BatchSpans.
	MaxBatchSpans = 1 << 20
)

// Options configures Decode.
type Options struct {
	// BatchSpans is the most OTLP spans in one emitted request. 0 means
	// DefaultBatchSpans; values above MaxBatchSpans mean MaxBatchSpans.
	// Batches are cut between traces (see the package documentation,
	// "Batching").
	BatchSpans int
	// KeepIDs bounds the memory of recently converted spans ((trace ID,
	// span ID) → the ID their children hang under) that resolves parents
	// outside the current batch, and the set of recent trace IDs behind
	// Stats.Traces. 0 means DefaultKeepIDs; a negative value keeps none.
	KeepIDs int
}

func (o Options) batchSpans() int {
	if o.BatchSpans <= 0 {
		return DefaultBatchSpans
	}
	return min(o.BatchSpans, MaxBatchSpans)
}

func (o Options) keepIDs() int {
	switch {
	case o.KeepIDs < 0:
		return 0
	case o.KeepIDs == 0:
		return DefaultKeepIDs
	}
	return o.KeepIDs
}

// Stats counts what a conversion read and produced.
type Stats struct {
	// Objects counts the span objects read from the input array.
	Objects int64
	// Spans counts distinct Zipkin spans: objects minus Merged. A v1 span
	// reported in objects that fall into different batches counts once
	// per batch.
	Spans int64
	// Traces counts distinct trace IDs, exactly as long as the objects of
	// one trace are never separated by more than KeepIDs other traces
	// (spigo writes each trace's spans together).
	Traces int64
	// OTLPSpans counts the OTLP spans emitted.
	OTLPSpans int64
	// Requests counts the export requests emitted.
	Requests int64
	// SharedSplit counts Zipkin spans split into client and server OTLP
	// spans: v1 spans with a cs→sr call, and v2 shared server spans given
	// a derived ID.
	SharedSplit int64
	// Merged counts v1 objects merged into an earlier object with the
	// same (traceId, id) in the same batch.
	Merged int64
	// Incomplete counts OTLP spans whose end is unknown (a client half
	// without cr, a server half without ss, a v2 span without duration):
	// they carry flowscope.duration_unknown and end = start.
	Incomplete int64
	// UnknownAnnotations counts v1 annotations whose value is not one of
	// Zipkin's core annotations (they become span events all the same).
	UnknownAnnotations int64
	// EmptyServiceNames counts OTLP spans whose endpoint has no service
	// name; their resource has no service.name.
	EmptyServiceNames int64
	// ParentsRemembered counts v1 parents resolved from the memory of
	// earlier batches (or, in the HTTP handler, earlier requests).
	ParentsRemembered int64
	// ParentsUnresolved counts v1 parents found nowhere (not converted
	// yet, or forgotten): the child keeps the parent ID as reported.
	ParentsUnresolved int64
}

// DecodeError is a problem in the input: malformed JSON, a value of the
// wrong type, an invalid ID, a span without a timestamp. It wraps
// ingest.ErrInvalid.
type DecodeError struct {
	// Version is the model being decoded.
	Version Version
	// Span is the index of the span object in the input array, or -1 when
	// the error is outside the span objects.
	Span int
	// Offset is the byte offset of the problem in the (decompressed)
	// input.
	Offset int64
	// Field is the path of the offending member inside the span object,
	// such as "annotations[2].timestamp"; empty when the error concerns
	// the whole object or the array.
	Field string
	// Msg names the problem.
	Msg string
}

// Error returns the message, for example
// `zipkin v1: span 12 at byte 3456: "id": want 16 hex digits, got 15`.
func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString(e.Version.String())
	if e.Span >= 0 {
		fmt.Fprintf(&b, ": span %d at byte %d: ", e.Span, e.Offset)
	} else {
		fmt.Fprintf(&b, ": at byte %d: ", e.Offset)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "%q: ", e.Field)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns ingest.ErrInvalid.
func (e *DecodeError) Unwrap() error { return ingest.ErrInvalid }

// Decode streams a JSON array of Zipkin spans of version v from r,
// converts them to OTLP and calls emit with each protobuf-encoded
// ExportTraceServiceRequest and its number of spans (at most
// opts.BatchSpans). It reads the array one element at a time and keeps at
// most a batch (plus the bounded ID memory, see Options.KeepIDs) in
// memory, whatever the input size.
//
// req is valid only during the call to emit, which must not retain it. An
// error from emit stops the decode and is returned wrapped. A problem in
// the input is returned as a *DecodeError (wrapping ingest.ErrInvalid)
// naming its position; the requests emitted before it stay emitted. A
// failure of r is returned wrapped, with its position. The Stats count
// what was read and emitted until then.
func Decode(r io.Reader, v Version, opts Options, emit func(req []byte, spans int) error) (Stats, error) {
	if v != V1 && v != V2 {
		return Stats{}, fmt.Errorf("zipkin: decode: unknown version %d", int(v))
	}
	if emit == nil {
		return Stats{}, errors.New("zipkin: decode: nil emit function")
	}
	d := newDecoder(v, opts.batchSpans(), true, newIDMemory(opts.keepIDs()), opts.keepIDs())
	d.s = newScanner(r)
	d.emit = func(req []byte, spans int) error {
		if err := emit(req, spans); err != nil {
			return fmt.Errorf("%v: emit request %d: %w", v, d.stats.Requests+1, err)
		}
		return nil
	}
	err := d.run()
	return d.stats, err
}

// ConvertAll converts the whole JSON array of Zipkin spans of version v in
// body into one protobuf-encoded ExportTraceServiceRequest. Unlike Decode
// it produces nothing unless all of body is valid, which is what an HTTP
// receiver needs: a request is stored whole or not at all. The memory it
// takes grows with body, so the caller bounds body's size. A body that
// holds an empty array gives an empty request (len 0) and zero OTLPSpans.
func ConvertAll(body []byte, v Version) (req []byte, stats Stats, err error) {
	return convertAll(body, v, newIDMemory(0))
}

// convertAll is ConvertAll with the ID memory of the caller (the HTTP
// handler shares one across requests).
func convertAll(body []byte, v Version, mem *idMemory) (req []byte, stats Stats, err error) {
	if v != V1 && v != V2 {
		return nil, Stats{}, fmt.Errorf("zipkin: convert: unknown version %d", int(v))
	}
	d := newDecoder(v, math.MaxInt, false, mem, 0)
	d.s = newBytesScanner(body)
	d.fresh = true
	d.emit = func(b []byte, _ int) error {
		if req != nil {
			return errors.New("BUG: zipkin: convertAll emitted twice")
		}
		req = b
		return nil
	}
	if err := d.run(); err != nil {
		return nil, d.stats, err
	}
	if req == nil {
		req = []byte{}
	}
	return req, d.stats, nil
}

// DerivedSpanID returns the OTLP span ID of hop hop (≥ 1) of the Zipkin
// span spanID in trace traceID: the server half of a v1 span shared by a
// client and a server is hop 1 (and further hops of a forwarded span are
// 2, 3, …); a v2 shared server span is hop 1 as well. Hop 0 is spanID
// itself. The ID is deterministic (a splitmix64 mix of the trace ID, span
// ID and hop), never zero and never spanID. A 64-bit trace ID is passed
// left-padded with zeros, as stored.
func DerivedSpanID(traceID [16]byte, spanID [8]byte, hop int) [8]byte {
	if hop == 0 {
		return spanID
	}
	const golden = 0x9e3779b97f4a7c15
	id := binary.BigEndian.Uint64(spanID[:])
	h := mix64(golden ^ binary.BigEndian.Uint64(traceID[:8]))
	h = mix64(h ^ binary.BigEndian.Uint64(traceID[8:]))
	h = mix64(h ^ id)
	h = mix64(h ^ uint64(hop))
	for h == 0 || h == id {
		h = mix64(h + golden)
	}
	var out [8]byte
	binary.BigEndian.PutUint64(out[:], h)
	return out
}

// mix64 is the splitmix64 finalizer.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
