package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/flowscope/flowscope/internal/config"
	"github.com/flowscope/flowscope/store"
)

// jsonTrace is an OTLP/JSON request with hex IDs, enum names and string
// 64-bit integers, as a user would hand-write or curl it.
func jsonTrace(traceID, spanID, name string) string {
	now := time.Now().UnixNano()
	return fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"curl-svc"}}]},
 "scopeSpans":[{"scope":{"name":"manual"},"spans":[{"traceId":%q,"spanId":%q,"name":%q,"kind":"SPAN_KIND_SERVER",
 "startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":[{"key":"n","value":{"intValue":"7"}}],
 "status":{"code":2,"message":"bad"}}]}]}]}`, traceID, spanID, name, now, now+int64(time.Millisecond))
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func post(t testing.TB, url, ctype, encoding string, body io.Reader) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, body)
	req.Header.Set("Content-Type", ctype)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// storeState summarizes what the store holds, to show bad input changed nothing.
func storeState(t testing.TB, s *server) string {
	t.Helper()
	ctx := context.Background()
	traces, err := s.DB.FindTraces(ctx, store.TraceQuery{Limit: store.MaxSearchLimit})
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := s.DB.Services(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := s.DB.MetricNames(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("traces=%d services=%v metrics=%d", len(traces), svcs, len(ms))
}

func TestRawJSONAndBadInput(t *testing.T) {
	s := startServer(t, "", func(c *config.Config) { c.Receivers.MaxRequestBytes = 1 << 20 })
	tracesURL := "http://" + s.addrs.OTLPHTTP + "/v1/traces"

	// A raw OTLP/JSON request, gzipped, is accepted and stored as sent.
	const tid, sid = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
	code, _, body := post(t, tracesURL, "application/json", "gzip", bytes.NewReader(gz(t, []byte(jsonTrace(tid, sid, "raw-json")))))
	if code != 200 {
		t.Fatalf("raw JSON: %d %s", code, body)
	}
	code, body = s.get(t, "/api/v1/traces/"+tid)
	if code != 200 || !strings.Contains(string(body), `"spanId":"`+sid+`"`) || !strings.Contains(string(body), `"traceId":"`+tid+`"`) {
		t.Fatalf("stored JSON trace: %d %s", code, body)
	}
	var doc struct {
		ResourceSpans []struct {
			ScopeSpans []struct {
				Spans []struct {
					Kind   any
					Status struct{ Code any }
				}
			}
		}
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if sp := doc.ResourceSpans[0].ScopeSpans[0].Spans[0]; fmt.Sprint(sp.Kind) != "2" || fmt.Sprint(sp.Status.Code) != "2" {
		t.Fatalf("kind/status not kept: %s", body)
	}
	before := storeState(t, s)

	bomb := func() io.Reader {
		// 64 MiB of zeros, compressed to ~64 KiB: far over the 1 MiB limit
		// once inflated.
		pr, pw := io.Pipe()
		go func() {
			w := gzip.NewWriter(pw)
			zeros := make([]byte, 1<<20)
			for range 64 {
				if _, err := w.Write(zeros); err != nil {
					break
				}
			}
			w.Close()
			pw.Close()
		}()
		return pr
	}
	cases := []struct {
		name     string
		ctype    string
		encoding string
		body     func() io.Reader
		status   int
		partial  bool   // 200 with partial_success
		contains string // in the response body
	}{
		{"malformed protobuf", "application/x-protobuf", "", func() io.Reader { return bytes.NewReader([]byte{0x0a, 0xff, 0x01}) }, 400, false, ""},
		{"malformed JSON", "application/json", "", func() io.Reader { return strings.NewReader(`{"resourceSpans":[{`) }, 400, false, ""},
		{"JSON wrong type", "application/json", "", func() io.Reader { return strings.NewReader(`{"resourceSpans":"x"}`) }, 400, false, ""},
		{"short trace ID", "application/json", "", func() io.Reader {
			return strings.NewReader(jsonTrace("5b8efff798038103d269b633813f", "eee19b7ec3c1b175", "short"))
		}, 200, true, "trace ID"},
		{"all-zero trace ID", "application/json", "", func() io.Reader {
			return strings.NewReader(jsonTrace(strings.Repeat("0", 32), "eee19b7ec3c1b176", "zero"))
		}, 200, true, "all zero"},
		{"all-zero span ID", "application/json", "", func() io.Reader {
			return strings.NewReader(jsonTrace("6b8efff798038103d269b633813fc60c", strings.Repeat("0", 16), "zero-span"))
		}, 200, true, "span ID"},
		{"non-hex span ID", "application/json", "", func() io.Reader {
			return strings.NewReader(jsonTrace("6b8efff798038103d269b633813fc60c", "zzzzzzzzzzzzzzzz", "nonhex"))
		}, 200, true, "span ID"},
		{"oversized body", "application/json", "", func() io.Reader { return bytes.NewReader(make([]byte, 2<<20)) }, 413, false, ""},
		{"gzip bomb", "application/x-protobuf", "gzip", bomb, 413, false, ""},
		{"corrupt gzip", "application/x-protobuf", "gzip", func() io.Reader { return strings.NewReader("not gzip at all") }, 400, false, ""},
		{"unsupported media type", "text/plain", "", func() io.Reader { return strings.NewReader("hello") }, 415, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := post(t, tracesURL, tc.ctype, tc.encoding, tc.body())
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, body)
			}
			if tc.partial {
				var resp struct {
					PartialSuccess struct {
						RejectedSpans string `json:"rejectedSpans"`
						ErrorMessage  string `json:"errorMessage"`
					} `json:"partialSuccess"`
				}
				if err := json.Unmarshal(body, &resp); err != nil {
					t.Fatalf("decode %s: %v", body, err)
				}
				if resp.PartialSuccess.RejectedSpans != "1" || !strings.Contains(resp.PartialSuccess.ErrorMessage, tc.contains) {
					t.Fatalf("partial success %s", body)
				}
			}
			if after := storeState(t, s); after != before {
				t.Fatalf("store changed: %s -> %s", before, after)
			}
		})
	}

	// Over gRPC: malformed protobuf is INVALID_ARGUMENT, an oversized
	// message RESOURCE_EXHAUSTED, and neither changes the store.
	conn, err := grpc.NewClient(s.addrs.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	var resp coltracepb.ExportTraceServiceResponse
	err = conn.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", rawBytes{0x0a, 0xff, 0x01}, &resp,
		grpc.ForceCodecV2(bytesCodec{}))
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("gRPC malformed: %v", err)
	}
	big := &coltracepb.ExportTraceServiceRequest{}
	b, _ := proto.Marshal(big)
	b = append(b, bytes.Repeat([]byte{0x7a, 0x00}, 1<<20)...) // unknown field 15, 2 MiB
	err = conn.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", rawBytes(b), &resp, grpc.ForceCodecV2(bytesCodec{}))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("gRPC oversized: %v", err)
	}
	if after := storeState(t, s); after != before {
		t.Fatalf("store changed over gRPC: %s -> %s", before, after)
	}
}
