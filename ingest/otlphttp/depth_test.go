package otlphttp

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/ingest/otlpjson"
)

// nestedJSON is an OTLP/JSON trace request with one span whose attribute
// value is k kvlists nested in each other: 6 + 3k messages deep.
func nestedJSON(k int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",` +
		`"spanId":"eee19b7ec3c1b174","name":"deep","startTimeUnixNano":"1700000000000000000",` +
		`"endTimeUnixNano":"1700000000000000100","attributes":[{"key":"k","value":`)
	for range k {
		b.WriteString(`{"kvlistValue":{"values":[{"key":"k","value":`)
	}
	b.WriteString(`{"stringValue":"leaf"}`)
	for range k {
		b.WriteString(`}]}}`)
	}
	b.WriteString(`}]}]}]}]}`)
	return b.Bytes()
}

// TestNestingLimit checks that both encodings refuse attribute values
// nested deeper than otlpwire.MaxDepth allows, although protojson and
// proto.Unmarshal accept up to 10,000 nested messages, and that the
// consumer never sees them.
func TestNestingLimit(t *testing.T) {
	cases := []struct {
		name        string
		kvlists     int
		contentType string
		wantStatus  int
	}{
		{"json, deepest accepted", 19, contentTypeJSON, http.StatusOK},
		{"json, one too deep", 20, contentTypeJSON, http.StatusBadRequest},
		{"json, 3000 deep", 3000, contentTypeJSON, http.StatusBadRequest},
		{"protobuf, deepest accepted", 19, contentTypeProtobuf, http.StatusOK},
		{"protobuf, one too deep", 20, contentTypeProtobuf, http.StatusBadRequest},
		{"protobuf, 3000 deep", 3000, contentTypeProtobuf, http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := nestedJSON(tc.kvlists)
			if tc.contentType == contentTypeProtobuf {
				req, err := otlpjson.UnmarshalTraces(body)
				if err != nil {
					t.Fatal(err)
				}
				body = mustProto(t, req)
			}
			consumer := &fakeConsumer{}
			h := NewHandler(Options{Traces: consumer})
			req := httptest.NewRequest(http.MethodPost, TracesPath, bytes.NewReader(body))
			req.Header.Set("Content-Type", tc.contentType)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %q", rec.Code, tc.wantStatus, rec.Body)
			}
			if tc.wantStatus == http.StatusOK {
				if consumer.calls() != 1 {
					t.Fatalf("%d consumer calls", consumer.calls())
				}
				return
			}
			if consumer.calls() != 0 {
				t.Fatal("the consumer got a request nested too deep")
			}
			var st status.Status
			if tc.contentType == contentTypeJSON {
				if err := otlpjson.Unmarshal(rec.Body.Bytes(), &st); err != nil {
					t.Fatal(err)
				}
			} else if err := proto.Unmarshal(rec.Body.Bytes(), &st); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(st.Message, "nested more than 64 deep") {
				t.Fatalf("message %q", st.Message)
			}
		})
	}
}
