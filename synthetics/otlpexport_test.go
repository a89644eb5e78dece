package synthetics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func TestOTLPWriter(t *testing.T) {
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{
		Spans: []*tracepb.Span{{TraceId: make([]byte, 16), SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Name: "synthetic"}}}}}}}
	raw, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		status       int
		answer       proto.Message
		wantErr      string
		wantRejected int64
	}{
		{name: "accepted", status: http.StatusOK, answer: &coltracepb.ExportTraceServiceResponse{}},
		{name: "partial success", status: http.StatusOK, answer: &coltracepb.ExportTraceServiceResponse{
			PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 1, ErrorMessage: "too old"}}, wantRejected: 1},
		{name: "unavailable", status: http.StatusServiceUnavailable, wantErr: "HTTP 503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-protobuf" || string(body) != string(raw) {
					http.Error(w, "bad request", http.StatusBadRequest)
					return
				}
				if tt.answer == nil {
					http.Error(w, "down", tt.status)
					return
				}
				b, _ := proto.Marshal(tt.answer)
				w.Header().Set("Content-Type", "application/x-protobuf")
				w.WriteHeader(tt.status)
				w.Write(b)
			}))
			defer srv.Close()
			res, err := NewOTLPWriter(srv.URL+"/v1/traces", nil).WriteTraces(context.Background(), raw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), srv.URL) {
					t.Fatalf("err = %v, want one naming the endpoint and %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Rejected != tt.wantRejected {
				t.Errorf("rejected = %d, want %d", res.Rejected, tt.wantRejected)
			}
		})
	}
}
