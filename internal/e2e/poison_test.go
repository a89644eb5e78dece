package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// poisonKinds are single spans that once broke the store for others: a
// 64 KiB attribute key (the next index checkpoint failed with "key too
// large" and a later one skipped its chunks), span and service names over
// 32 KiB (the group commit failed for every request in it), and a 64 KiB
// resource attribute key.
var poisonKinds = []string{"attr-key-64k", "span-name-40k", "service-name-40k", "resource-key-64k"}

// poisonRequest builds a request holding one poison span and one innocent
// span (in its own resource), and returns it with the innocent span's
// trace and span IDs.
func poisonRequest(rng *rand.Rand, kind string) (*coltracepb.ExportTraceServiceRequest, string, string) {
	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	now := uint64(time.Now().UnixNano())
	span := func(name string, attrs ...*commonpb.KeyValue) *tracepb.Span {
		return &tracepb.Span{TraceId: crashID(rng, 16), SpanId: crashID(rng, 8), Name: name, Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: now, EndTimeUnixNano: now + 1000, Attributes: attrs}
	}
	poisonRes := []*commonpb.KeyValue{str("service.name", "poison")}
	var poison *tracepb.Span
	switch kind {
	case "attr-key-64k":
		poison = span("op", str(strings.Repeat("k", 64<<10), "v"))
	case "span-name-40k":
		poison = span(strings.Repeat("n", 40_000))
	case "service-name-40k":
		poisonRes = []*commonpb.KeyValue{str("service.name", strings.Repeat("s", 40_000))}
		poison = span("op")
	case "resource-key-64k":
		poisonRes = append(poisonRes, str(strings.Repeat("r", 64<<10), "v"))
		poison = span("op")
	}
	innocent := span("innocent-op", str("kind", kind))
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		{Resource: &resourcepb.Resource{Attributes: poisonRes}, ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{poison}}}},
		{Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "bystander")}},
			ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{innocent}}}},
	}}
	return req, hex.EncodeToString(innocent.TraceId), hex.EncodeToString(innocent.SpanId)
}

// TestPoisonSpansHarmNoOne sends poison spans among innocent requests over
// OTLP/gRPC, across index checkpoints and restarts (SIGTERM, then
// SIGKILL): each poison span is refused alone with a partial success
// naming the limit, every innocent request is acknowledged, and every
// acknowledged span is found after each restart.
func TestPoisonSpansHarmNoOne(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the collector across checkpoints and restarts; skipped under -short")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	bin := sharedCollectorBin(t)
	dir := filepath.Join(t.TempDir(), "data")
	acked := map[string][]string{}
	var mu sync.Mutex

	// send exports innocent batches from 8 goroutines and the poison
	// requests among them, all concurrently, so that they share group
	// commits.
	send := func(p *procCollector, round int) {
		conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := coltracepb.NewTraceServiceClient(conn)
		var wg sync.WaitGroup
		for w := range 8 {
			wrng := rand.New(rand.NewPCG(seed, uint64(round*100+w)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range 40 {
					req, tid, sids := crashBatch(wrng, w, n)
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					resp, err := client.Export(ctx, req)
					cancel()
					if err != nil || resp.GetPartialSuccess().GetRejectedSpans() != 0 {
						t.Errorf("innocent export: %v %v", err, resp.GetPartialSuccess())
						return
					}
					mu.Lock()
					acked[tid] = sids
					mu.Unlock()
				}
			}()
		}
		for _, kind := range poisonKinds {
			for range 3 {
				mu.Lock()
				req, tid, sid := poisonRequest(rng, kind)
				mu.Unlock()
				resp, err := client.Export(context.Background(), req)
				switch {
				case status.Code(err) == codes.InvalidArgument:
					// refused whole: the innocent span was not acknowledged
				case err != nil:
					t.Errorf("%s: export: %v (want a partial success or INVALID_ARGUMENT)", kind, err)
				case resp.GetPartialSuccess().GetRejectedSpans() != 1 || resp.GetPartialSuccess().GetErrorMessage() == "":
					t.Errorf("%s: partial success %v, want the poison span refused with a message", kind, resp.GetPartialSuccess())
				default:
					mu.Lock()
					acked[tid] = []string{sid}
					mu.Unlock()
				}
			}
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	// checkpointWait outlasts the store's index checkpoint interval (10 s),
	// so that the poison spans would reach a checkpoint.
	const checkpointWait = 11 * time.Second

	p := procStartCollector(t, bin, dir)
	p.waitReady(t, 15*time.Second)
	send(p, 1)
	time.Sleep(checkpointWait)
	send(p, 2)
	if code := p.terminate(t, 30*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit status %d:\n%s", code, p.logText())
	}
	if errs := p.errorLogs(); len(errs) > 0 {
		t.Errorf("the collector logged errors:\n%s", strings.Join(errs, "\n"))
	}
	p = procStartCollector(t, bin, dir)
	p.waitReady(t, 30*time.Second)
	verifyAcked(t, p, acked, "after SIGTERM")

	send(p, 3)
	time.Sleep(checkpointWait)
	send(p, 4)
	if errs := p.errorLogs(); len(errs) > 0 {
		t.Errorf("the collector logged errors:\n%s", strings.Join(errs, "\n"))
	}
	p.sigkill(t)
	p = procStartCollector(t, bin, dir)
	p.waitReady(t, 30*time.Second)
	verifyAcked(t, p, acked, "after SIGKILL")
	if errs := p.errorLogs(); len(errs) > 0 {
		t.Errorf("the collector logged errors after the restart:\n%s", strings.Join(errs, "\n"))
	}
}

// verifyAcked checks acknowledged traces of any size (crashVerify's
// figures assume crash batches).
func verifyAcked(t *testing.T, p *procCollector, acked map[string][]string, when string) {
	t.Helper()
	for id := range acked {
		sort.Strings(acked[id])
	}
	crashVerify(t, p, acked, fmt.Sprintf("%s (%d traces)", when, len(acked)))
}
