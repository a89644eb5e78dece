package uitest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// frameStats is window.__flowscope.sampleFrames(ms).
type frameStats struct {
	Frames   int     `json:"frames"`
	Updates  int     `json:"updates"`
	Interval summary `json:"interval"`
	Draw     summary `json:"draw"`
}

type summary struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	Max  float64 `json:"max"`
}

// TestMapPerformance seeds a 300-node, 1,000-edge topology through the
// OTLP/HTTP receiver, opens the map and records the time to the first
// render and the frame times while the map refreshes live (with flow
// particles). The figures are logged and written to perf.json in the
// screenshot directory; the test fails only when the first render takes
// more than 5 s (the target is 1 s) or the map lacks nodes or edges.
func TestMapPerformance(t *testing.T) {
	browser(t)
	s := startCollector(t)
	seedStart := time.Now()
	wantNodes, wantEdges := bigTopology(t, s, 300, 1000)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var g apiGraph
		s.getJSON(t, "/api/v1/flowgraph", &g)
		if len(g.Nodes) == 300 && len(g.Edges) == 1000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flow graph has %d nodes and %d edges after seeding, want 300 and 1000", len(g.Nodes), len(g.Edges))
		}
		time.Sleep(100 * time.Millisecond)
	}
	seeded := time.Since(seedStart)

	b := newTab(t, s.base)
	start := time.Now()
	b.open("map")
	b.wait(`(s => s && s.drawnNodes === 300 && s.drawnEdges === 1000)(__flowscope.mapState())`, 60*time.Second, "the 300-node map")
	wall := time.Since(start)
	st := b.mapState()
	if got := slices.Sorted(slices.Values(st.Nodes)); !slices.Equal(got, wantNodes) {
		t.Errorf("map has %d nodes, want the 300 seeded", len(got))
	}
	if got := slices.Sorted(slices.Values(st.Edges)); !slices.Equal(got, slices.Sorted(slices.Values(wantEdges))) {
		t.Errorf("map has %d edges, want the 1000 seeded", len(got))
	}
	if st.FirstDrawNodes != 300 || st.FirstDrawEdges != 1000 {
		t.Errorf("first render drew %d nodes and %d edges, want 300 and 1000", st.FirstDrawNodes, st.FirstDrawEdges)
	}
	// firstDrawAt is performance.now() of the first render: milliseconds
	// since the navigation started.
	firstDrawAt := eval[float64](b, `__flowscope.mapState().firstDrawAt`)
	firstRender := time.Duration(firstDrawAt * float64(time.Millisecond))

	// Settled: not running, and finished at least once (before its first
	// frame the layout is not running either).
	// The bound is generous: the layout runs 8 ms a frame, and the CI
	// machine's two cores are shared with the end-to-end tests' clusters;
	// the time it took is reported, not judged, here.
	b.wait(`(s => !s.layoutRunning && s.layoutDoneAt !== null)(__flowscope.mapState())`, 90*time.Second, "the layout to settle")
	settled := eval[float64](b, `__flowscope.mapState().layoutDoneAt`)
	t.Logf("layout runs: %s", eval[string](b, `JSON.stringify(__flowscope.mapState().layoutRuns)`))
	// Frame times while the map refreshes every 1.5 s with particles.
	frames := eval[frameStats](b, `__flowscope.sampleFrames(5000)`)
	if frames.Updates < 2 {
		t.Errorf("%d refreshes in 5 s, want at least 2", frames.Updates)
	}
	b.shot("service-map-300")

	// Big-map tools: focus on one node's neighbourhood.
	b.do(chromedp.SendKeys(chromedp.CSS(`[data-testid=map-search]`), "svc-150"+kb.Enter))
	b.wait(`(s => s.visibleNodes > 1 && s.visibleNodes < 300)(__flowscope.mapState())`, 5*time.Second, "the neighbourhood of svc-150")
	focus := b.mapState()
	b.shot("service-map-300-focus")
	// Back to the whole map, without the calls of less than the mean rate.
	var rates struct {
		Edges []struct {
			Rate float64 `json:"rate"`
		} `json:"edges"`
	}
	s.getJSON(t, "/api/v1/flowgraph", &rates)
	var sum float64
	for _, e := range rates.Edges {
		sum += e.Rate
	}
	minRate := strconv.FormatFloat(sum/float64(len(rates.Edges)), 'g', 4, 64)
	b.do(chromedp.Click(chromedp.CSS(`[data-testid=unfocus-btn]`)), chromedp.SendKeys(chromedp.CSS(`[data-testid=min-rate]`), minRate))
	// Nodes left without a call above the rate are hidden too.
	b.wait(`(s => s.visibleNodes > 0 && s.visibleNodes <= 300 && s.visibleEdges > 0 && s.visibleEdges < 1000)(__flowscope.mapState())`, 5*time.Second, "edges below "+minRate+"/s to be hidden")
	filtered := b.mapState()

	report := map[string]any{
		"nodes": len(st.Nodes), "edges": len(st.Edges),
		"seedAndAggregateMs":         seeded.Milliseconds(),
		"firstRenderSinceNavigateMs": firstDrawAt,
		"firstRenderSinceMountMs":    st.FirstRenderMs,
		"wallUntilRenderedMs":        wall.Milliseconds(),
		"layoutSettledSinceNavMs":    settled,
		"layoutCpuMs":                st.LayoutMs,
		"frames":                     frames,
		"focusVisibleNodes":          focus.VisibleNodes,
		"focusVisibleEdges":          focus.VisibleEdges,
		"minRateVisibleEdges":        filtered.VisibleEdges,
	}
	t.Logf("300 nodes / 1000 edges: first render %.0f ms after navigation (%.0f ms after the view mounted; %v wall clock seen by the test); layout settled at %.0f ms (%.0f ms of layout CPU)",
		firstDrawAt, st.FirstRenderMs, wall.Round(time.Millisecond), settled, st.LayoutMs)
	t.Logf("while refreshing live (%d refreshes in 5 s, flow particles on): frame interval mean %.1f ms, p95 %.1f ms, max %.1f ms over %d frames; draw mean %.2f ms, p95 %.2f ms, max %.2f ms",
		frames.Updates, frames.Interval.Mean, frames.Interval.P95, frames.Interval.Max, frames.Frames, frames.Draw.Mean, frames.Draw.P95, frames.Draw.Max)
	data, _ := json.MarshalIndent(report, "", "  ")
	if err := os.WriteFile(filepath.Join(screenshotDir(t), "perf.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if firstRender > 5*time.Second {
		t.Errorf("first render %v after navigation: more than 5 s (target 1 s)", firstRender)
	}
	b.checkClean()
}
