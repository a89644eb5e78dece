package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/flowscope/flowscope/internal/otlptest"
)

// TestOverloadRefusesAndKeepsAcknowledged blocks the committer (by holding
// bbolt's single writer lock) so that the queue fills: further writes are
// refused with ErrOverloaded, and every write that was queued is committed
// once the committer runs again. Nothing acknowledged is lost.
func TestOverloadRefusesAndKeepsAcknowledged(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(5, 6))
	req, _ := proto.Marshal(otlptest.TelemetrygenRequest(r, 64, time.Now()))
	db, err := Open(dir, Options{QueueBytes: int64(len(req)) * 3, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.bolt.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		req []byte
		err error
	}
	results := make(chan result, 10)
	var wg sync.WaitGroup
	for range 10 {
		b, _ := proto.Marshal(otlptest.TelemetrygenRequest(r, 64, time.Now()))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.WriteTraces(context.Background(), b)
			results <- result{b, err}
		}()
	}
	// Wait until the queue is full and the rest were refused.
	deadline := time.Now().Add(5 * time.Second)
	refused := 0
	for refused < 7 && time.Now().Before(deadline) {
		select {
		case res := <-results:
			if !errors.Is(res.err, ErrOverloaded) {
				t.Fatalf("write while blocked: %v", res.err)
			}
			refused++
		case <-time.After(10 * time.Millisecond):
		}
	}
	if refused != 7 {
		t.Fatalf("refused %d writes, want 7 (queue holds 3)", refused)
	}
	tx.Rollback()
	wg.Wait()
	close(results)
	acked := 0
	for res := range results {
		if res.err != nil {
			t.Fatalf("queued write failed: %v", res.err)
		}
		acked++
		id := firstTraceID(t, res.req)
		if _, err := db.Trace(context.Background(), id); err != nil {
			t.Fatalf("acknowledged trace missing: %v", err)
		}
	}
	if acked != 3 {
		t.Fatalf("acknowledged %d, want 3", acked)
	}
	if got := db.queuedBytes.Load(); got != 0 {
		t.Fatalf("queue accounting leaked %d bytes", got)
	}
}

func firstTraceID(t *testing.T, raw []byte) TraceID {
	t.Helper()
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	var id TraceID
	copy(id[:], req.ResourceSpans[0].ScopeSpans[0].Spans[0].TraceId)
	return id
}
