package zipkin

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowscope/flowscope/ingest/otlpjson"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestConvert converts each testdata file and checks the shape of the
// result (kinds, services, IDs, parents, times, errors), the Stats, and the
// complete OTLP output against testdata/<name>.golden.json (OTLP/JSON with
// hex IDs). Regenerate the goldens with
//
//	go test ./ingest/zipkin -run TestConvert -update
func TestConvert(t *testing.T) {
	tests := []struct {
		file   string
		v      Version
		shapes []string
		stats  Stats
	}{
		{
			// spigo layout (leading commas, blank lines): shared spans
			// split, children under the server half, partial spans, an
			// empty service name.
			file: "v1_spigo.json", v: V1,
			shapes: []string{
				`CLIENT www/www00 "GetRequest" id=4 parent=- t=0..100`,
				`SERVER webserver-elb/webserver-elb00 "GetRequest" id=4#1 parent=4 t=10..90`,
				`CLIENT webserver-elb/webserver-elb00 "GetRequest" id=5 parent=4#1 t=20..80`,
				`SERVER webserver/webserver17 "GetRequest" id=5#1 parent=5 t=30..70`,
				`CLIENT webserver/webserver17 "Put" id=6 parent=5#1 t=40..?`,
				`SERVER rds-mysql/rds-mysql01 "Put" id=6#1 parent=6 t=40..?`,
				`SERVER webserver/webserver10 "Goodbye" id=11 parent=- t=200..?`,
				`CLIENT www/www00 "GetRequest" id=14 parent=- t=300..?`,
				`SERVER  "Hello" id=39 parent=- t=400..?`,
			},
			stats: Stats{Objects: 6, Spans: 6, Traces: 4, OTLPSpans: 9, Requests: 1, SharedSplit: 3,
				Incomplete: 5, EmptyServiceNames: 1},
		},
		{
			// priamCassandra: a Get forwarded with the caller's cr, a
			// three-host Replicate, and a child of its last server half.
			file: "v1_forward.json", v: V1,
			shapes: []string{
				`CLIENT subscriber/subscriber00 "GetRequest" id=20 parent=- t=0..?`,
				`SERVER cassandra/cassandra00 "GetRequest" id=20#1 parent=20 t=10..?`,
				`CLIENT cassandra/cassandra00 "GetRequest" id=21 parent=20#1 t=20..50`,
				`SERVER cassandra/cassandra01 "GetRequest" id=21#1 parent=21 t=30..40`,
				`CLIENT cassandra/cassandra01 "Replicate" id=22 parent=21#1 t=60..?`,
				`SERVER cassandra/cassandra02 "Replicate" id=22#1 parent=22 t=70..?`,
				`CLIENT cassandra/cassandra02 "Replicate" id=22#2 parent=22#1 t=80..?`,
				`SERVER cassandra/cassandra03 "Replicate" id=22#3 parent=22#2 t=90..?`,
				`CLIENT cassandra/cassandra03 "GetRequest" id=23 parent=22#3 t=100..130`,
				`SERVER disk/disk00 "GetRequest" id=23#1 parent=23 t=110..120`,
			},
			stats: Stats{Objects: 4, Spans: 4, Traces: 1, OTLPSpans: 10, Requests: 1, SharedSplit: 4, Incomplete: 6},
		},
		{
			// Zipkin v1 as instrumentation reports it: halves in separate
			// objects (merged), binary annotations, sa/ca addresses, a
			// local span (lc), span-level timestamp and duration, error
			// annotation and binary annotation, a zero parentId.
			file: "v1_zipkin.json", v: V1,
			shapes: []string{
				`CLIENT batch "unknown" id=ddd parent=- t=0..50 error="worker crashed"`,
				`CLIENT frontend "get /users" id=6b221d5bc9e6496c parent=- t=10..110`,
				`SERVER worker "unknown" id=ddd#1 parent=ddd t=11..? error="worker crashed"`,
				`SERVER backend "get /users" id=6b221d5bc9e6496c#1 parent=6b221d5bc9e6496c t=20..100`,
				`CLIENT backend "query" id=bbb parent=6b221d5bc9e6496c#1 t=40..90 error="timeout"`,
				`INTERNAL backend "render" id=ccc parent=6b221d5bc9e6496c#1 t=50..60`,
			},
			stats: Stats{Objects: 5, Spans: 4, Traces: 1, OTLPSpans: 6, Requests: 1, SharedSplit: 2, Merged: 1,
				Incomplete: 1, UnknownAnnotations: 2},
		},
		{
			// v2: shared server with a derived ID, children of the shared
			// span in its service (re-parented) and in the client's (kept),
			// producer/consumer, missing duration and timestamp.
			file: "v2_basic.json", v: V2,
			shapes: []string{
				`CLIENT frontend "get /api" id=c1 parent=- t=0..100`,
				`SERVER backend "get /api" id=c1#1 parent=c1 t=10..90 error="boom"`,
				`CLIENT backend "select" id=d1 parent=c1#1 t=20..50`,
				`PRODUCER backend "send" id=a1 parent=c1#1 t=60..62`,
				`INTERNAL frontend "layout" id=f1 parent=c1 t=95..98`,
				`CONSUMER worker "receive" id=b1 parent=a1 t=200..?`,
				`INTERNAL  "unknown" id=e1f parent=- t=1000040..?`,
			},
			stats: Stats{Objects: 7, Spans: 7, Traces: 2, OTLPSpans: 7, Requests: 1, SharedSplit: 1,
				Incomplete: 2, EmptyServiceNames: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			input, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			reqBytes, stats, err := ConvertAll(input, tt.v)
			if err != nil {
				t.Fatal(err)
			}
			req := decodeRequest(t, reqBytes)
			spans := flatten(req)
			if got := shapes(spans); !slices.Equal(got, tt.shapes) {
				t.Errorf("shapes:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tt.shapes, "\n     "))
			}
			if stats != tt.stats {
				t.Errorf("stats\n got %+v\nwant %+v", stats, tt.stats)
			}
			checkResourcesGrouped(t, req.ResourceSpans)

			// Decode streams the same spans.
			reqs, dstats, err := decodeAll(t, input, tt.v, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if dstats != stats {
				t.Errorf("Decode stats %+v, ConvertAll stats %+v", dstats, stats)
			}
			if got := shapes(flatten(reqs...)); !slices.Equal(got, tt.shapes) {
				t.Errorf("Decode shapes differ from ConvertAll:\n%s", strings.Join(got, "\n"))
			}
			// Every buffer refill path gives the same request bytes.
			var byByte []byte
			if _, err := Decode(&oneByteReader{bytes.NewReader(input)}, tt.v, Options{}, func(b []byte, _ int) error {
				byByte = append(byByte, b...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(byByte, reqBytes) {
				t.Errorf("Decode byte by byte gives another request than ConvertAll")
			}

			golden(t, strings.TrimSuffix(tt.file, ".json")+".golden.json", &tracepb.TracesData{ResourceSpans: req.ResourceSpans})
		})
	}
}

// checkResourcesGrouped checks that no two ResourceSpans of a request have
// the same resource.
func checkResourcesGrouped(t *testing.T, rss []*tracepb.ResourceSpans) {
	t.Helper()
	seen := map[string]bool{}
	for _, rs := range rss {
		k := rs.GetResource().String()
		if seen[k] {
			t.Errorf("resource %s appears in two ResourceSpans", k)
		}
		seen[k] = true
		if len(rs.ScopeSpans) != 1 || rs.ScopeSpans[0].GetScope().GetName() != ScopeName {
			t.Errorf("want one scope named %q, got %v", ScopeName, rs.ScopeSpans)
		}
	}
}

// golden compares td, as indented OTLP/JSON, with testdata/name.
func golden(t *testing.T, name string, td *tracepb.TracesData) {
	t.Helper()
	out, err := otlpjson.MarshalTracesData(td)
	if err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, out, "", "  "); err != nil {
		t.Fatal(err)
	}
	indented.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, indented.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(indented.Bytes(), want) {
		g, w := strings.Split(indented.String(), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(g) || i < len(w); i++ {
			var gl, wl string
			if i < len(g) {
				gl = g[i]
			}
			if i < len(w) {
				wl = w[i]
			}
			if gl != wl {
				t.Fatalf("output differs from %s (run with -update if intended) at line %d:\n got: %s\nwant: %s", path, i+1, gl, wl)
			}
		}
	}
}
