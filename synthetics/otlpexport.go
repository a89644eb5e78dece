package synthetics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/store"
)

// OTLPWriter sends the prober's spans to an OTLP/HTTP traces endpoint
// (http://collector:4318/v1/traces) instead of a store: on a query front
// end, whose checks' spans must reach the node that holds the rest of
// each run's trace, through the OpenTelemetry Collector that routes by
// trace ID (docs/scale-out.md).
type OTLPWriter struct {
	url    string
	client *http.Client
}

// NewOTLPWriter returns a writer posting to url with client (nil: a
// client of its own).
func NewOTLPWriter(url string, client *http.Client) *OTLPWriter {
	if client == nil {
		client = &http.Client{}
	}
	return &OTLPWriter{url: url, client: client}
}

var _ SpanWriter = (*OTLPWriter)(nil)

// WriteTraces posts req, an OTLP ExportTraceServiceRequest, as
// application/x-protobuf. A partial success is reported as rejected
// spans; an error status is an error naming the endpoint.
func (w *OTLPWriter) WriteTraces(ctx context.Context, req []byte) (store.WriteResult, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(req))
	if err != nil {
		return store.WriteResult{}, fmt.Errorf("export spans: %w", err)
	}
	hr.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := w.client.Do(hr)
	if err != nil {
		return store.WriteResult{}, fmt.Errorf("export spans to %s: %w", w.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return store.WriteResult{}, fmt.Errorf("export spans to %s: read answer: %w", w.url, err)
	}
	if resp.StatusCode/100 != 2 {
		return store.WriteResult{}, fmt.Errorf("export spans to %s: HTTP %d: %s", w.url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var out coltracepb.ExportTraceServiceResponse
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-protobuf") && len(body) > 0 {
		if err := proto.Unmarshal(body, &out); err != nil {
			return store.WriteResult{}, fmt.Errorf("export spans to %s: decode answer: %w", w.url, err)
		}
	}
	ps := out.GetPartialSuccess()
	return store.WriteResult{Rejected: ps.GetRejectedSpans(), Message: ps.GetErrorMessage()}, nil
}
