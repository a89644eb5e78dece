package zipkin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/store"
)

// storeConsumer writes to a real store, as the collector does.
type storeConsumer struct{ db *store.DB }

func (c storeConsumer) ConsumeTraces(ctx context.Context, req []byte) (ingest.Result, error) {
	res, err := c.db.WriteTraces(ctx, req)
	return ingest.Result{Rejected: res.Rejected, Message: res.Message}, err
}

// TestLimitsThroughStore checks that Zipkin spans go through the store's
// OTLP parse and its limits: a span name or service name over
// otlpwire.MaxNameBytes is refused alone (Zipkin has no partial success:
// 400 naming the limit), and the other spans of the request are stored.
func TestLimitsThroughStore(t *testing.T) {
	ts := time.Now().Add(-time.Minute).UnixMicro()
	span := func(id int, name, service string) string {
		return fmt.Sprintf(`{"traceId":"00000000000000%02x","id":"00000000000000%02x","name":%q,"timestamp":%d,"duration":10,`+
			`"localEndpoint":{"serviceName":%q}}`, id, id, name, ts, service)
	}
	long := strings.Repeat("n", 40000)
	cases := []struct {
		name    string
		poison  string
		message string
	}{
		{"span name", span(2, long, "svc"), "name is 40000 bytes, the limit is 4096"},
		{"service name", span(2, "get", long), "resource service.name is 40000 bytes, the limit is 4096"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db, err := store.Open(t.TempDir(), store.Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			h := NewHandler(HandlerOptions{Traces: storeConsumer{db}})
			body := "[" + span(1, "get", "svc") + "," + tc.poison + "]"
			req := httptest.NewRequest(http.MethodPost, V2Path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			answer, _ := io.ReadAll(rec.Body)
			if rec.Code != http.StatusBadRequest || !strings.Contains(string(answer), tc.message) ||
				!strings.Contains(string(answer), "1 of the 2 spans") {
				t.Fatalf("status %d: %.500s", rec.Code, answer)
			}
			var id, poisoned store.TraceID
			id[15], poisoned[15] = 1, 2
			if _, err := db.Trace(context.Background(), id); err != nil {
				t.Fatalf("innocent span: %v", err)
			}
			if _, err := db.Trace(context.Background(), poisoned); err == nil {
				t.Fatal("poisoned span stored")
			}
		})
	}
}
