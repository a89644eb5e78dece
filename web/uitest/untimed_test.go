package uitest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowscope/flowscope/internal/config"
)

// TestUnknownLatency seeds, through the Zipkin receiver, one-way messages
// (spigo's Put: a client and a server half without durations) from
// producer to queue, and calls from producer to store of which only some
// were answered. The map's tooltip and side panel, the overview and the
// latency page must call the one-way edge's latency unknown — never 0 ns,
// never the fastest — and say how many of the mixed edge's calls are
// timed.
func TestUnknownLatency(t *testing.T) {
	browser(t)
	s := startCollector(t, func(c *config.Config) { c.Aggregation.EdgeWait = time.Second })
	start := time.Now().Add(-time.Minute).UnixMicro()
	var spans []map[string]any
	half := func(trace, id, parent, kind, svc, name string, at, dur int64) {
		sp := map[string]any{"traceId": trace, "id": id, "name": name, "kind": kind, "timestamp": start + at,
			"localEndpoint": map[string]any{"serviceName": svc}}
		if parent != "" {
			sp["parentId"] = parent
		}
		if kind == "SERVER" && parent != "" {
			sp["shared"] = true
		}
		if dur > 0 {
			sp["duration"] = dur
		}
		spans = append(spans, sp)
	}
	for i := range 8 {
		trace := fmt.Sprintf("%032x", 0x7000+i)
		root := fmt.Sprintf("%016x", 0x7000+i)
		half(trace, root, "", "SERVER", "producer", "produce", 0, 9000)
		put := fmt.Sprintf("%016x", 0x8000+i)
		half(trace, put, root, "CLIENT", "producer", "put", 100, 0)
		half(trace, put, root, "SERVER", "queue", "put", 200, 0)
		get := fmt.Sprintf("%016x", 0x9000+i)
		if i < 5 {
			half(trace, get, root, "CLIENT", "producer", "get", 300, 4000)
			half(trace, get, root, "SERVER", "store", "get", 400, 3000)
		} else {
			half(trace, get, root, "CLIENT", "producer", "get", 300, 0)
			half(trace, get, root, "SERVER", "store", "get", 400, 0)
		}
	}
	s.postZipkin(t, spans)
	s.waitEdge(t, "producer", "queue")
	s.waitEdge(t, "producer", "store")

	b := newTab(t, s.base)
	b.open("map")
	b.wait(`(s => s && s.edges.length === 2 && s.drawnEdges === 2)(__flowscope.mapState())`, 10*time.Second, "the map to show 2 edges")
	b.wait(`!__flowscope.mapState().layoutRunning`, 10*time.Second, "the layout to settle")
	tip := `document.querySelector('[data-testid=map-tooltip]')`
	hover := func(source, target string) string {
		p := eval[point](b, fmt.Sprintf(`__flowscope.edgePoint(%s, %s, 0.5)`, js(source), js(target)))
		b.do(chromedp.MouseEvent("mouseMoved", p.X, p.Y))
		b.wait(`!`+tip+`.hidden && `+tip+`.innerText.includes(`+js(target)+`)`, 5*time.Second, "the tooltip of "+source+" → "+target)
		text := eval[string](b, tip+`.innerText`)
		b.do(chromedp.MouseEvent("mouseMoved", 5, 5))
		return text
	}
	if text := hover("producer", "queue"); !strings.Contains(text, "unknown") || strings.Contains(text, "0 ns") || strings.Contains(text, "p99") {
		t.Errorf("tooltip of the one-way edge = %q, want its latency unknown, no quantiles", text)
	}
	if text := hover("producer", "store"); !strings.Contains(text, "p99") || !strings.Contains(text, "5 of 8 calls") {
		t.Errorf("tooltip of the mixed edge = %q, want quantiles and \"5 of 8 calls\"", text)
	}
	// The overview's slowest calls leave the unknown edge out.
	b.wait(`document.querySelector('[data-testid=map-summary]') && document.querySelector('[data-testid=map-summary]').textContent.includes('Slowest calls')`, 5*time.Second, "the overview")
	summary := eval[string](b, `document.querySelector('[data-testid=map-summary]').textContent`)
	if _, slowest, _ := strings.Cut(summary, "Slowest calls"); strings.Contains(slowest, "queue") || !strings.Contains(slowest, "store") {
		t.Errorf("slowest calls:%s\nwant producer → store only", slowest)
	}

	// The side panel of the edge.
	b.open("map?source=producer&target=queue")
	b.wait(`document.querySelector('[data-testid=side-latency-unknown]') && document.querySelector('[data-testid=map-side] [data-testid=msg-untimed]')`, 10*time.Second, "the side panel to call the latency unknown")
	if side := eval[string](b, `document.querySelector('[data-testid=map-side]').innerText`); strings.Contains(side, "0 ns") {
		t.Errorf("side panel shows 0 ns:\n%s", side)
	}

	// The latency page: quantiles "–", count 8, timed 0.
	b.open("latency?source=producer&target=queue")
	b.wait(`document.querySelector('[data-testid=msg-untimed]') && document.querySelector('[data-testid="quantile-p99"]')`, 10*time.Second, "the latency page")
	if v := eval[string](b, `document.querySelector('[data-testid="quantile-p99"] .qchip-value').innerText`); v != "–" {
		t.Errorf("p99 chip reads %q, want –", v)
	}
	if v := eval[string](b, `document.querySelector('[data-testid=stat-timed]').innerText`); !strings.Contains(v, "0 (0 %)") {
		t.Errorf("timed stat reads %q, want 0 (0 %%)", v)
	}
	b.open("latency?source=producer&target=store")
	b.wait(`document.querySelector('[data-testid=latency-partial]')`, 10*time.Second, "the note on untimed calls")
	b.shot("latency-partial")
	b.checkClean()
}
