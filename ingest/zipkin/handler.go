package zipkin

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/ingest/internal/budgetio"
	"github.com/flowscope/flowscope/ingest/internal/httpbody"
	"github.com/flowscope/flowscope/membudget"
)

// URL paths of the Zipkin-compatible endpoints.
const (
	V1Path = "/api/v1/spans"
	V2Path = "/api/v2/spans"
)

// DefaultMaxBodyBytes is the request body limit used when
// HandlerOptions.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 16 << 20

// Labels of ingest.RequestMetrics.
const (
	receiverName = "zipkin"
	signalName   = "traces"
)

// HandlerOptions configures the handler returned by NewHandler.
type HandlerOptions struct {
	// Traces receives the converted requests. Nil answers every path
	// with 404.
	Traces ingest.TracesConsumer
	// MaxBodyBytes limits the request body, both as sent and after
	// decompression. 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger receives the rare failures worth a log line (consumer errors
	// answered with 500) and, at debug level, refused requests. Nil
	// discards them.
	Logger *slog.Logger
	// RequestMetrics counts every request (receiver "zipkin", signal
	// "traces") by outcome. Nil counts nothing.
	RequestMetrics *ingest.RequestMetrics
	// KeepIDs bounds the memory, shared by all requests of one endpoint,
	// of recently converted spans that resolves v1 parents and v2 shared
	// parents sent in earlier requests (see Options.KeepIDs). 0 means
	// DefaultKeepIDs; a negative value keeps none.
	KeepIDs int
	// Budget is the process-wide memory budget. A body's buffer and its
	// conversion are reserved from it as the bytes arrive, never from the
	// declared Content-Length; a request that does not fit is refused
	// with 503 and Retry-After (what Zipkin clients retry), before its
	// body is read when possible. Nil: unlimited.
	Budget *membudget.Budget
}

// NewHandler returns the Zipkin-compatible receiver: an http.Handler
// serving POST /api/v1/spans (Zipkin v1 JSON, such as spigo flow files)
// and POST /api/v2/spans (Zipkin v2 JSON). It converts a whole body with
// ConvertAll, so an invalid body stores nothing, and answers as a Zipkin
// server does:
//
//   - 202 Accepted with an empty body once the spans are durably stored;
//   - 400 with a plain text message naming the problem and its position
//     for a body that does not decode, or when the consumer rejected some
//     spans (Zipkin has no partial success; the message says how many of
//     the spans were stored anyway);
//   - 413 for a body over MaxBodyBytes, as sent or decompressed;
//   - 415 for Thrift or protobuf bodies (only JSON is supported) and for
//     a Content-Encoding other than gzip, deflate or identity;
//   - 503 with Retry-After when the memory budget cannot take the body
//     (see HandlerOptions.Budget);
//   - 429 or 503 with Retry-After when the consumer is overloaded or
//     unavailable, 500 for other consumer failures;
//   - 405 for methods other than POST, 404 for other paths.
//
// Any Content-Type other than Thrift and protobuf is read as JSON, as
// Zipkin does (application/json, text/plain, none). The handler is safe for
// concurrent use; the caller owns the http.Server and its timeouts.
func NewHandler(opts HandlerOptions) http.Handler {
	h := &handler{traces: opts.Traces, Receiver: httpbody.NewReceiver("zipkin", opts.MaxBodyBytes, DefaultMaxBodyBytes,
		opts.Logger, opts.RequestMetrics, opts.Budget)}
	keep := Options{KeepIDs: opts.KeepIDs}.keepIDs()
	h.mem[0], h.mem[1] = newIDMemory(keep), newIDMemory(keep)
	return h
}

type handler struct {
	httpbody.Receiver
	traces ingest.TracesConsumer
	mem    [2]*idMemory // v1, v2
}

// httpError is a refusal: a status, the outcome counted and a message.
type httpError struct {
	status  int
	outcome string
	msg     string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var v Version
	switch r.URL.Path {
	case V1Path:
		v = V1
	case V2Path:
		v = V2
	}
	if v == 0 || h.traces == nil {
		h.fail(w, &httpError{http.StatusNotFound, ingest.OutcomeUnsupported,
			fmt.Sprintf("no Zipkin endpoint at %q: use POST %s or %s", r.URL.Path, V1Path, V2Path)})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, &httpError{http.StatusMethodNotAllowed, ingest.OutcomeUnsupported,
			fmt.Sprintf("method %s not allowed: Zipkin spans are sent with POST", r.Method)})
		return
	}
	if herr := checkContentType(r.Header.Get("Content-Type")); herr != nil {
		h.fail(w, herr)
		return
	}
	// Everything this request holds in memory is reserved from the budget
	// and given back when it is answered.
	res := budgetio.Reservation{Budget: h.Budget}
	defer res.Release()
	body, herr := h.readBody(r, budgetio.GetBuffer(), &res)
	defer budgetio.PutBuffer(body)
	if herr != nil {
		h.fail(w, herr)
		return
	}
	// The converted request is about as large as the JSON (IDs shrink,
	// split v1 spans grow): reserve that much before converting, and
	// count any excess once it is known.
	if !res.Grow(int64(len(body))) {
		h.fail(w, h.overBudget())
		return
	}
	req, stats, err := convertAll(body, v, h.mem[v-1])
	res.Hold(int64(len(req) - len(body)))
	if err != nil {
		if errors.Is(err, ingest.ErrInvalid) {
			h.fail(w, badRequest(err.Error()))
			return
		}
		h.Logger.Error("convert zipkin spans", "version", v.String(), "err", err)
		h.fail(w, &httpError{http.StatusInternalServerError, ingest.OutcomeError, err.Error()})
		return
	}
	if stats.OTLPSpans > 0 {
		result, err := h.traces.ConsumeTraces(r.Context(), req)
		if err != nil {
			h.fail(w, h.consumerError(err))
			return
		}
		if result.Rejected > 0 {
			h.Metrics.Inc(receiverName, signalName, ingest.OutcomePartial)
			h.writeText(w, http.StatusBadRequest, fmt.Sprintf(
				"%d of the %d spans converted from %d Zipkin spans were rejected; the other %d were stored "+
					"(Zipkin has no partial success): first problem: %s",
				result.Rejected, stats.OTLPSpans, stats.Spans, stats.OTLPSpans-result.Rejected, result.Message))
			return
		}
	}
	h.Metrics.Inc(receiverName, signalName, ingest.OutcomeOK)
	w.WriteHeader(http.StatusAccepted)
}

// checkContentType refuses the binary Zipkin encodings; every other media
// type is read as JSON, as Zipkin does.
func checkContentType(header string) *httpError {
	if header == "" || header == "application/json" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(header)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(header))
	}
	switch mt {
	case "application/x-thrift", "application/thrift", "application/vnd.apache.thrift.binary":
		return &httpError{http.StatusUnsupportedMediaType, ingest.OutcomeUnsupported,
			fmt.Sprintf("unsupported Content-Type %q: Zipkin Thrift is not supported, only JSON (application/json)", header)}
	case "application/x-protobuf", "application/protobuf":
		return &httpError{http.StatusUnsupportedMediaType, ingest.OutcomeUnsupported,
			fmt.Sprintf("unsupported Content-Type %q: Zipkin protobuf is not supported, only JSON (application/json)", header)}
	}
	return nil
}

// readBody reads the request body (httpbody.Read) and maps a failure to
// the answer.
func (h *handler) readBody(r *http.Request, buf []byte, mem *budgetio.Reservation) ([]byte, *httpError) {
	buf, err := httpbody.Read(r, buf, h.MaxBody, mem)
	if err == nil {
		return buf, nil
	}
	switch err.Kind {
	case httpbody.TooLarge:
		return buf, &httpError{http.StatusRequestEntityTooLarge, ingest.OutcomeTooLarge, err.Msg}
	case httpbody.UnsupportedEncoding:
		return buf, &httpError{http.StatusUnsupportedMediaType, ingest.OutcomeUnsupported, err.Msg}
	case httpbody.OverBudget:
		return buf, h.overBudget()
	}
	return buf, badRequest(err.Msg)
}

// overBudget is the answer to a request the memory budget cannot take:
// 503 with Retry-After, which Zipkin clients retry (unlike 429).
func (h *handler) overBudget() *httpError {
	return &httpError{http.StatusServiceUnavailable, ingest.OutcomeOverloaded,
		fmt.Sprintf("memory budget of %d bytes is in use: retry later", h.Budget.Limit())}
}

// consumerError maps a consumer's error to the answer.
func (h *handler) consumerError(err error) *httpError {
	msg := fmt.Sprintf("store spans: %v", err)
	switch {
	case errors.Is(err, ingest.ErrOverloaded):
		return &httpError{http.StatusTooManyRequests, ingest.OutcomeOverloaded, msg}
	case errors.Is(err, ingest.ErrUnavailable):
		return &httpError{http.StatusServiceUnavailable, ingest.OutcomeUnavailable, msg}
	case errors.Is(err, ingest.ErrInvalid):
		return badRequest(msg)
	}
	h.Logger.Error("consume zipkin spans", "err", err)
	return &httpError{http.StatusInternalServerError, ingest.OutcomeError, msg}
}

func badRequest(msg string) *httpError {
	return &httpError{http.StatusBadRequest, ingest.OutcomeInvalid, msg}
}

// fail counts a refused request and answers it.
func (h *handler) fail(w http.ResponseWriter, e *httpError) {
	h.Metrics.Inc(receiverName, signalName, e.outcome)
	if e.status == http.StatusTooManyRequests || e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", httpbody.RetryAfter)
	}
	h.Logger.Debug("zipkin request refused", "status", e.status, "err", e.msg)
	h.writeText(w, e.status, e.msg)
}

// writeText answers with a plain text message.
func (h *handler) writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(msg)+1))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}
