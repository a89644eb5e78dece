package importer

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/ingest/zipkin"
)

// convertedSpans converts a Zipkin v1 file as the receiver would (IDs as
// they are), in the order Import sends them with one batch.
func convertedSpans(t *testing.T, body []byte) []*tracepb.Span {
	t.Helper()
	b, _, err := zipkin.ConvertAll(body, zipkin.V1)
	if err != nil {
		t.Fatal(err)
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		t.Fatal(err)
	}
	var out []*tracepb.Span
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			out = append(out, ss.Spans...)
		}
	}
	return out
}

// spigoTraceAttr returns the spigo.trace_id attribute of span, or -1.
func spigoTraceAttr(span *tracepb.Span) int64 {
	for _, kv := range span.Attributes {
		if kv.Key == AttrSpigoTraceID {
			return kv.Value.GetIntValue()
		}
	}
	return -1
}

// TestSpigoTraceIDsUniquePerImport imports the two spigo flow samples, whose
// trace (and span) IDs are both small counters, and checks that each
// import gives its traces IDs of its own (issue 11, item 4): no trace ID
// is shared between the files, every span keeps spigo's number of its trace
// in spigo.trace_id, and span IDs and parents are those of the file, so
// every trace keeps its shape.
func TestSpigoTraceIDsUniquePerImport(t *testing.T) {
	owner := map[[16]byte]string{} // new trace ID → file
	for _, file := range []string{"json_metrics/lamp_flow.json", "json_metrics/storage_flow.json"} {
		body, err := os.ReadFile(spigoDir + file)
		if err != nil {
			t.Fatal(err)
		}
		want := convertedSpans(t, body)
		sink := &recordingSink{}
		sum, err := Import(context.Background(), BytesInput(file, body), sink, Options{BatchSpans: len(want)})
		if err != nil {
			t.Fatal(err)
		}
		if !sum.SpigoTraceIDs {
			t.Errorf("%s: summary does not tell that trace IDs were rewritten", file)
		}
		got := sink.spans(t)
		if len(got) != len(want) {
			t.Fatalf("%s: %d spans sent, want %d", file, len(got), len(want))
		}
		newOf := map[[16]byte][16]byte{}
		for i, g := range got {
			w := want[i]
			old := [16]byte(w.TraceId)
			num, ok := spigoTraceNumber(old[:])
			if !ok {
				t.Fatalf("%s: trace ID %x is not a spigo counter", file, old)
			}
			if a := spigoTraceAttr(g); a != num {
				t.Errorf("%s: span %x: spigo.trace_id %d, want %d", file, g.SpanId, a, num)
			}
			if !bytes.Equal(g.SpanId, w.SpanId) || !bytes.Equal(g.ParentSpanId, w.ParentSpanId) || g.Name != w.Name {
				t.Errorf("%s: span %d: id %x parent %x, want %x %x", file, i, g.SpanId, g.ParentSpanId, w.SpanId, w.ParentSpanId)
			}
			id := [16]byte(g.TraceId)
			if id == old {
				t.Errorf("%s: trace %x kept its ID", file, old)
			}
			if id != spigoImportID(t, spigoDir+file, false, int(num)) {
				t.Errorf("%s: trace %d got ID %x, not the documented one", file, num, id)
			}
			if prev, ok := newOf[old]; ok && prev != id {
				t.Errorf("%s: trace %x split into %x and %x", file, old, prev, id)
			}
			newOf[old] = id
			if f, ok := owner[id]; ok && f != file {
				t.Errorf("trace ID %x used by %s and %s", id, f, file)
			}
			owner[id] = file
		}
		if len(newOf) != int(sum.Traces) {
			t.Errorf("%s: %d new trace IDs for %d traces", file, len(newOf), sum.Traces)
		}
	}
}

// TestSpigoTraceIDsRule checks which Zipkin files get new trace IDs: spigo
// flow files only, recognised by their spigo names and decimal counter
// IDs; a rebased import gets other IDs than a plain one.
func TestSpigoTraceIDsRule(t *testing.T) {
	const spigoName = "lamp.us-east-1.zoneA..webserver00...webserver.monolith"
	span := func(traceID, service string) string {
		return `{"traceId":"` + traceID + `","id":"0000000000000001","name":"GetRequest","annotations":[` +
			`{"endpoint":{"serviceName":"` + service + `"},"timestamp":1463590172533902,"value":"sr"},` +
			`{"endpoint":{"serviceName":"` + service + `"},"timestamp":1463590172543902,"value":"ss"}]}`
	}
	tests := []struct {
		name    string
		file    string
		rewrite bool
	}{
		{"spigo flow", "[" + span("0000000000000007", spigoName) + "]", true},
		{"spigo flow with an unnamed endpoint", "[" + span("0000000000000007", spigoName) + "," + span("0000000000000008", "") + "]", true},
		{"random 64-bit ID", "[" + span("5b8efff798038103", spigoName) + "]", false},
		{"128-bit ID", "[" + span("00000000000000010000000000000007", spigoName) + "]", false},
		{"plain service name", "[" + span("0000000000000007", "frontend") + "]", false},
		{"one plain name among spigo names", "[" + span("0000000000000007", spigoName) + "," + span("0000000000000008", "frontend") + "]", false},
		{"only unnamed endpoints", "[" + span("0000000000000007", "") + "]", false},
		{"empty run", "[\n\n]", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &recordingSink{}
			sum, err := Import(context.Background(), BytesInput("f.json", []byte(tt.file)), sink, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if sum.SpigoTraceIDs != tt.rewrite {
				t.Errorf("SpigoTraceIDs %v, want %v", sum.SpigoTraceIDs, tt.rewrite)
			}
			for _, sp := range sink.spans(t) {
				attr := spigoTraceAttr(sp)
				if tt.rewrite {
					if attr < 1 || bytes.HasPrefix(sp.TraceId, make([]byte, 8)) {
						t.Errorf("span of trace %x: spigo.trace_id %d", sp.TraceId, attr)
					}
				} else if attr != -1 || !bytes.Contains([]byte(tt.file), []byte(hex.EncodeToString(sp.TraceId[8:]))) {
					t.Errorf("span of trace %x rewritten (spigo.trace_id %d)", sp.TraceId, attr)
				}
			}
		})
	}

	// The same file rebased is another import: other trace IDs.
	file := []byte("[" + span("0000000000000007", spigoName) + "]")
	ids := map[string]bool{}
	for _, rebase := range []time.Time{{}, time.Now()} {
		sink := &recordingSink{}
		if _, err := Import(context.Background(), BytesInput("f.json", file), sink, Options{Rebase: rebase}); err != nil {
			t.Fatal(err)
		}
		ids[hex.EncodeToString(sink.spans(t)[0].TraceId)] = true
	}
	if len(ids) != 2 {
		t.Errorf("plain and rebased imports share trace IDs: %v", ids)
	}
}

// FuzzSpigoRewrite checks that rewriting a converted request never fails
// nor changes anything but trace IDs and the added attribute.
func FuzzSpigoRewrite(f *testing.F) {
	for _, file := range []string{"json_metrics/lamp_flow.json", "json_metrics/storage_flow.json"} {
		b, err := os.ReadFile(spigoDir + file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > 1<<20 {
			return
		}
		req, _, err := zipkin.ConvertAll(body, zipkin.V1)
		if err != nil {
			return
		}
		var d spigoDetect
		if err := d.add(req); err != nil {
			t.Fatalf("detect: %v", err)
		}
		if !d.isSpigo() {
			return
		}
		out, err := newSpigoRewriter(make([]byte, 32), false).rewrite(nil, req)
		if err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		a, b := &coltracepb.ExportTraceServiceRequest{}, &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(req, a); err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(out, b); err != nil {
			t.Fatalf("rewritten request does not decode: %v", err)
		}
		for i, rs := range b.ResourceSpans {
			for j, ss := range rs.ScopeSpans {
				for k, sp := range ss.Spans {
					orig := a.ResourceSpans[i].ScopeSpans[j].Spans[k]
					num, _ := spigoTraceNumber(orig.TraceId)
					if spigoTraceAttr(sp) != num {
						t.Fatalf("spigo.trace_id %d, want %d", spigoTraceAttr(sp), num)
					}
					sp.TraceId = orig.TraceId
					sp.Attributes = sp.Attributes[:len(sp.Attributes)-1]
				}
			}
		}
		if !proto.Equal(a, b) {
			t.Fatal("rewriting changed more than trace IDs and spigo.trace_id")
		}
	})
}
