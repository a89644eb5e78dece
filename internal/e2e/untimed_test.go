package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/config"
)

// TestOneWayMessagesLatencyUnknown posts spigo-style Zipkin v1 spans of
// one-way messages (a Put: cs and sr, never answered, so without a
// duration) and of answered calls (cs, sr, ss, cr), and requires the flow
// graph and the latency API to count every call but to report the latency
// of the one-way calls as unknown — null, with the count of timed calls —
// rather than 0 ns.
func TestOneWayMessagesLatencyUnknown(t *testing.T) {
	s := startServer(t, "", func(c *config.Config) { c.Aggregation.EdgeWait = time.Second })
	defer s.stop(t)

	start := time.Now().Add(-time.Minute).UnixMicro()
	ep := func(svc string) string { return `{"serviceName":"` + svc + `","ipv4":"10.0.0.1"}` }
	ann := func(v string, at int64, svc string) string {
		return fmt.Sprintf(`{"value":%q,"timestamp":%d,"endpoint":%s}`, v, start+at, ep(svc))
	}
	var spans []string
	span := func(trace, id int, name string, anns ...string) {
		parent := ""
		if id != trace {
			parent = fmt.Sprintf(`"parentId":"%016x",`, trace)
		}
		spans = append(spans, fmt.Sprintf(`{"traceId":"%016x",%s"id":"%016x","name":%q,"annotations":[%s]}`,
			trace, parent, id, name, strings.Join(anns, ",")))
	}
	for i := range 5 {
		trace := 0x100 + 0x10*i
		span(trace, trace, "produce", ann("sr", 0, "producer"), ann("ss", 5000, "producer"))
		// One-way: spigo's Put, cs and sr only.
		span(trace, trace+1, "put", ann("cs", 100, "producer"), ann("sr", 200, "queue"))
		if i < 3 {
			// Answered: 2 ms on the client side.
			span(trace, trace+2, "get", ann("cs", 300, "producer"), ann("sr", 400, "store"), ann("ss", 2100, "store"), ann("cr", 2300, "producer"))
		} else {
			span(trace, trace+2, "put", ann("cs", 300, "producer"), ann("sr", 400, "store"))
		}
	}
	resp, err := http.Post("http://"+s.addrs.Zipkin+"/api/v1/spans", "application/json", strings.NewReader("["+strings.Join(spans, ",")+"]"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v1/spans: %s", resp.Status)
	}
	checkEdges(t, s, map[string]float64{"producer → queue": 5, "producer → store": 5})

	type summary struct {
		P50, P90, P99, P999 *float64
		TimedCalls          float64
	}
	var graph struct {
		Edges []struct {
			Source, Target string
			Calls          float64
			Latency        summary
		}
	}
	code, body := s.get(t, "/api/v1/flowgraph")
	if code != http.StatusOK || json.Unmarshal(body, &graph) != nil {
		t.Fatalf("GET /api/v1/flowgraph: %d %s", code, body)
	}
	for _, e := range graph.Edges {
		l := e.Latency
		switch e.Target {
		case "queue":
			if l.P50 != nil || l.P90 != nil || l.P99 != nil || l.P999 != nil || l.TimedCalls != 0 {
				t.Errorf("one-way edge latency %s, want null quantiles and timedCalls 0", body)
			}
		case "store":
			if l.P50 == nil || l.P999 == nil || l.TimedCalls != 3 || *l.P50 < 1.98e6 || *l.P50 > 2.02e6 {
				t.Errorf("mixed edge latency %+v, want timedCalls 3 and p50 of 2 ms", l)
			}
		}
	}

	var lat struct {
		Count, TimedCount float64
		Min, Max, Mean    *float64
		Quantiles         []struct {
			Quantile float64
			Value    *float64
		}
	}
	code, body = s.get(t, "/api/v1/latency?source=producer&target=queue")
	if code != http.StatusOK || json.Unmarshal(body, &lat) != nil {
		t.Fatalf("GET /api/v1/latency: %d %s", code, body)
	}
	if lat.Count != 5 || lat.TimedCount != 0 || lat.Min != nil || lat.Max != nil || lat.Mean != nil || len(lat.Quantiles) != 4 {
		t.Errorf("latency of the one-way edge: %s; want count 5, timedCount 0, null values", body)
	}
	for _, q := range lat.Quantiles {
		if q.Value != nil {
			t.Errorf("quantile %v = %v, want null", q.Quantile, *q.Value)
		}
	}
}
