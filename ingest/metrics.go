package ingest

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Request outcomes counted by RequestMetrics.
const (
	OutcomeOK          = "ok"          // everything accepted
	OutcomePartial     = "partial"     // some items rejected by validation
	OutcomeInvalid     = "invalid"     // undecodable payload
	OutcomeTooLarge    = "too_large"   // body over the size limit
	OutcomeOverloaded  = "overloaded"  // refused, store queue full
	OutcomeUnavailable = "unavailable" // refused, store closing or failed
	OutcomeError       = "error"       // any other failure
	OutcomeUnsupported = "unsupported" // wrong method, path or media type
)

// RequestMetrics counts export requests per receiver, signal and outcome as
// flowscope_receiver_requests_total. Spans and points are counted by the
// consumer, which knows how many a request held.
type RequestMetrics struct {
	requests *prometheus.CounterVec
}

// NewRequestMetrics registers the receiver request counter with reg. A nil
// reg leaves the counter unregistered (useful in tests). Registering twice
// with the same reg reuses the existing collector.
func NewRequestMetrics(reg prometheus.Registerer) *RequestMetrics {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowscope_receiver_requests_total",
		Help: "Export requests received, by receiver (otlp_grpc, otlp_http, zipkin), signal and outcome.",
	}, []string{"receiver", "signal", "outcome"})
	if reg != nil {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				c = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return &RequestMetrics{requests: c}
}

// Inc counts one request. A nil *RequestMetrics counts nothing.
func (m *RequestMetrics) Inc(receiver, signal, outcome string) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(receiver, signal, outcome).Inc()
}

// Outcome classifies the result of a consumer call.
func Outcome(res Result, err error) string {
	switch {
	case err == nil && res.Rejected > 0:
		return OutcomePartial
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrOverloaded):
		return OutcomeOverloaded
	case errors.Is(err, ErrUnavailable):
		return OutcomeUnavailable
	case errors.Is(err, ErrInvalid):
		return OutcomeInvalid
	default:
		return OutcomeError
	}
}
