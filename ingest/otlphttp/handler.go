package otlphttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/ingest/internal/budgetio"
	"github.com/flowscope/flowscope/ingest/internal/httpbody"
	"github.com/flowscope/flowscope/ingest/otlpjson"
	"github.com/flowscope/flowscope/membudget"
	"github.com/flowscope/flowscope/otlpwire"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

// URL paths of the OTLP/HTTP export endpoints.
const (
	TracesPath  = "/v1/traces"
	MetricsPath = "/v1/metrics"
)

// DefaultMaxBodyBytes is the request body limit used when
// Options.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 16 << 20

// Media types of the two OTLP/HTTP encodings.
const (
	contentTypeProtobuf = "application/x-protobuf"
	contentTypeJSON     = "application/json"
)

// receiverName is the receiver label of ingest.RequestMetrics.
const receiverName = "otlp_http"

// Options configures the handler returned by NewHandler.
type Options struct {
	// Traces receives the export requests of POST /v1/traces. Nil answers
	// that path with 404.
	Traces ingest.TracesConsumer
	// Metrics receives the export requests of POST /v1/metrics. Nil answers
	// that path with 404.
	Metrics ingest.MetricsConsumer
	// MaxBodyBytes limits the request body, both as sent and after
	// decompression. 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger receives the rare failures worth a log line (consumer errors
	// answered with 500). Nil discards them.
	Logger *slog.Logger
	// RequestMetrics counts every request by signal and outcome. Nil counts
	// nothing.
	RequestMetrics *ingest.RequestMetrics
	// Budget is the process-wide memory budget. A body's buffer (and,
	// for OTLP/JSON, its decoded message and protobuf re-encoding) is
	// reserved from it as the bytes arrive, never from the declared
	// Content-Length; a request that does not fit is refused with 429 and
	// Retry-After, before its body is read when possible. Nil: unlimited.
	Budget *membudget.Budget
}

// NewHandler returns the OTLP/HTTP receiver: an http.Handler serving
// POST /v1/traces and POST /v1/metrics as the package documentation
// describes. It is safe for concurrent use. The caller owns the http.Server
// and its timeouts.
func NewHandler(opts Options) http.Handler {
	h := &handler{Receiver: httpbody.NewReceiver("otlphttp", opts.MaxBodyBytes, DefaultMaxBodyBytes,
		opts.Logger, opts.RequestMetrics, opts.Budget)}
	if c := opts.Traces; c != nil {
		h.traces = &signal{
			name:     "traces",
			consume:  c.ConsumeTraces,
			validate: otlpwire.ValidateTraces,
			fromJSON: func(b []byte) (proto.Message, error) { return otlpjson.UnmarshalTraces(b) },
			response: func(res ingest.Result) proto.Message {
				resp := &coltracepb.ExportTraceServiceResponse{}
				if res.Rejected > 0 {
					resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{
						RejectedSpans: res.Rejected,
						ErrorMessage:  res.Message,
					}
				}
				return resp
			},
		}
	}
	if c := opts.Metrics; c != nil {
		h.metricsSig = &signal{
			name:     "metrics",
			consume:  c.ConsumeMetrics,
			validate: otlpwire.ValidateMetrics,
			fromJSON: func(b []byte) (proto.Message, error) { return otlpjson.UnmarshalMetrics(b) },
			response: func(res ingest.Result) proto.Message {
				resp := &colmetricspb.ExportMetricsServiceResponse{}
				if res.Rejected > 0 {
					resp.PartialSuccess = &colmetricspb.ExportMetricsPartialSuccess{
						RejectedDataPoints: res.Rejected,
						ErrorMessage:       res.Message,
					}
				}
				return resp
			},
		}
	}
	return h
}

// signal is what differs between the traces and the metrics endpoint.
type signal struct {
	name     string // label of ingest.RequestMetrics and word of messages
	consume  func(context.Context, []byte) (ingest.Result, error)
	validate func([]byte) error                  // checks a protobuf body decodes (otlpwire.ValidateTraces, ValidateMetrics)
	fromJSON func([]byte) (proto.Message, error) // decodes an OTLP/JSON body
	response func(ingest.Result) proto.Message   // builds the success response
}

type handler struct {
	httpbody.Receiver
	traces     *signal
	metricsSig *signal
}

// encoding is the body encoding of a request and of its response.
type encoding int

const (
	encProtobuf encoding = iota
	encJSON
)

func (e encoding) contentType() string {
	if e == encJSON {
		return contentTypeJSON
	}
	return contentTypeProtobuf
}

// httpError is a failure answered with an HTTP status and a google.rpc.Status.
type httpError struct {
	status  int
	code    code.Code // google.rpc.Code in the Status body
	outcome string    // ingest outcome counted
	msg     string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Errors before the Content-Type is known are answered in protobuf, the
	// OTLP/HTTP default; later ones in the request's encoding.
	enc, mediaOK := parseContentType(r.Header.Get("Content-Type"))

	var sig *signal
	switch r.URL.Path {
	case TracesPath:
		sig = h.traces
	case MetricsPath:
		sig = h.metricsSig
	}
	if sig == nil {
		h.Metrics.Inc(receiverName, "unknown", ingest.OutcomeUnsupported)
		h.writeError(w, enc, &httpError{http.StatusNotFound, code.Code_UNIMPLEMENTED, ingest.OutcomeUnsupported,
			fmt.Sprintf("no OTLP endpoint at %q: use POST %s or %s", r.URL.Path, TracesPath, MetricsPath)})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, sig, enc, &httpError{http.StatusMethodNotAllowed, code.Code_UNIMPLEMENTED, ingest.OutcomeUnsupported,
			fmt.Sprintf("method %s not allowed: OTLP/HTTP exports use POST", r.Method)})
		return
	}
	if !mediaOK {
		h.fail(w, sig, enc, &httpError{http.StatusUnsupportedMediaType, code.Code_INVALID_ARGUMENT, ingest.OutcomeUnsupported,
			fmt.Sprintf("unsupported Content-Type %q: use %s or %s", r.Header.Get("Content-Type"), contentTypeProtobuf, contentTypeJSON)})
		return
	}

	// Everything this request holds in memory is reserved from the budget
	// and given back when it is answered.
	mem := budgetio.Reservation{Budget: h.Budget}
	defer mem.Release()
	body, herr := h.readBody(r, budgetio.GetBuffer(), &mem)
	defer budgetio.PutBuffer(body)
	if herr != nil {
		h.fail(w, sig, enc, herr)
		return
	}

	if enc == encJSON {
		// The decoded message takes about as much memory as its JSON.
		if !mem.Grow(int64(len(body))) {
			h.fail(w, sig, enc, h.overBudget())
			return
		}
		m, err := sig.fromJSON(body)
		if err != nil {
			h.fail(w, sig, enc, badRequest(fmt.Sprintf("decode OTLP/JSON %s: %v", sig.name, err)))
			return
		}
		size := proto.Size(m)
		if !mem.Grow(int64(size)) {
			h.fail(w, sig, enc, h.overBudget())
			return
		}
		bin := slices.Grow(budgetio.GetBuffer(), size)
		defer budgetio.PutBuffer(bin)
		body, err = proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(bin, m)
		if err != nil {
			h.fail(w, sig, enc, &httpError{http.StatusInternalServerError, code.Code_INTERNAL, ingest.OutcomeError,
				fmt.Sprintf("encode %s as protobuf: %v", sig.name, err)})
			return
		}
		// protojson allows 10,000 nested messages; the store allows
		// otlpwire.MaxDepth, on every path.
		if err := sig.validate(body); err != nil {
			h.fail(w, sig, enc, badRequest(fmt.Sprintf("decode OTLP/JSON %s: %v", sig.name, err)))
			return
		}
	} else if err := sig.validate(body); err != nil {
		h.fail(w, sig, enc, badRequest(fmt.Sprintf("decode OTLP/protobuf %s: %v", sig.name, err)))
		return
	}

	res, err := sig.consume(r.Context(), body)
	if err != nil {
		h.fail(w, sig, enc, h.consumerError(sig, err))
		return
	}
	h.Metrics.Inc(receiverName, sig.name, ingest.Outcome(res, nil))
	h.writeMessage(w, enc, http.StatusOK, sig.response(res))
}

// parseContentType maps a Content-Type header to an encoding; ok is false
// for media types other than the two of OTLP/HTTP.
func parseContentType(header string) (enc encoding, ok bool) {
	switch header { // the common exact forms, without parsing
	case contentTypeProtobuf:
		return encProtobuf, true
	case contentTypeJSON:
		return encJSON, true
	}
	mt, _, err := mime.ParseMediaType(header)
	if err != nil {
		return encProtobuf, false
	}
	switch mt {
	case contentTypeProtobuf:
		return encProtobuf, true
	case contentTypeJSON:
		return encJSON, true
	}
	return encProtobuf, false
}

// readBody reads the request body (httpbody.Read) and maps a failure to
// the answer OTLP/HTTP prescribes.
func (h *handler) readBody(r *http.Request, buf []byte, mem *budgetio.Reservation) ([]byte, *httpError) {
	buf, err := httpbody.Read(r, buf, h.MaxBody, mem)
	if err == nil {
		return buf, nil
	}
	switch err.Kind {
	case httpbody.TooLarge:
		return buf, &httpError{http.StatusRequestEntityTooLarge, code.Code_RESOURCE_EXHAUSTED, ingest.OutcomeTooLarge, err.Msg}
	case httpbody.UnsupportedEncoding:
		return buf, &httpError{http.StatusUnsupportedMediaType, code.Code_INVALID_ARGUMENT, ingest.OutcomeUnsupported, err.Msg}
	case httpbody.OverBudget:
		return buf, h.overBudget()
	}
	return buf, badRequest(err.Msg)
}

// overBudget is the answer to a request the memory budget cannot take:
// 429 with Retry-After, which OTLP clients retry.
func (h *handler) overBudget() *httpError {
	return &httpError{http.StatusTooManyRequests, code.Code_RESOURCE_EXHAUSTED, ingest.OutcomeOverloaded,
		fmt.Sprintf("memory budget of %d bytes is in use: retry later", h.Budget.Limit())}
}

// consumerError maps a consumer's error to the answer OTLP/HTTP prescribes.
func (h *handler) consumerError(sig *signal, err error) *httpError {
	msg := fmt.Sprintf("store %s: %v", sig.name, err)
	switch {
	case errors.Is(err, ingest.ErrOverloaded):
		return &httpError{http.StatusTooManyRequests, code.Code_RESOURCE_EXHAUSTED, ingest.OutcomeOverloaded, msg}
	case errors.Is(err, ingest.ErrUnavailable):
		return &httpError{http.StatusServiceUnavailable, code.Code_UNAVAILABLE, ingest.OutcomeUnavailable, msg}
	case errors.Is(err, ingest.ErrInvalid):
		return badRequest(msg)
	}
	h.Logger.Error("consume export request", "signal", sig.name, "err", err)
	return &httpError{http.StatusInternalServerError, code.Code_INTERNAL, ingest.OutcomeError, msg}
}

func badRequest(msg string) *httpError {
	return &httpError{http.StatusBadRequest, code.Code_INVALID_ARGUMENT, ingest.OutcomeInvalid, msg}
}

// fail counts a failed request of sig and answers it.
func (h *handler) fail(w http.ResponseWriter, sig *signal, enc encoding, e *httpError) {
	h.Metrics.Inc(receiverName, sig.name, e.outcome)
	h.writeError(w, enc, e)
}

// writeError answers with e's status and a google.rpc.Status body.
func (h *handler) writeError(w http.ResponseWriter, enc encoding, e *httpError) {
	if e.status == http.StatusTooManyRequests || e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", httpbody.RetryAfter)
	}
	h.Logger.Debug("export request refused", "status", e.status, "err", e.msg)
	// A decoder's message may quote the client's bytes: a Status message
	// must be UTF-8, or it cannot be encoded at all.
	h.writeMessage(w, enc, e.status, &status.Status{Code: int32(e.code), Message: strings.ToValidUTF8(e.msg, "\uFFFD")})
}

// writeMessage writes m in the encoding enc with the given status.
func (h *handler) writeMessage(w http.ResponseWriter, enc encoding, statusCode int, m proto.Message) {
	var (
		b   []byte
		err error
	)
	if enc == encJSON {
		b, err = otlpjson.Marshal(m)
	} else {
		b, err = proto.Marshal(m)
	}
	if err != nil {
		// Only an invalid UTF-8 message from a consumer can get here.
		h.Logger.Error("encode response", "err", err)
		statusCode, b = http.StatusInternalServerError, nil
	}
	w.Header().Set("Content-Type", enc.contentType())
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(statusCode)
	_, _ = w.Write(b)
}
