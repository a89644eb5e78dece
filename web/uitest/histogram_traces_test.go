package uitest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestHistogramTraces clicks a bar of the latency histogram and checks that
// the trace search lists exactly the traces whose spans fall in that bar.
func TestHistogramTraces(t *testing.T) {
	s := startCollector(t)
	const svc = "histsvc"
	now := time.Now().Add(-2 * time.Minute)
	var spans []span
	var fast, slow []time.Duration // the seeded server span durations
	for i := 0; i < 10; i++ {
		c := time.Duration(5500+100*i) * time.Microsecond // server ≈ 5 ms
		spans = append(spans, call("histfront", svc, "GET /fast", "fast", now.Add(time.Duration(i)*time.Second), c, false)...)
		fast = append(fast, c*9/10)
	}
	for i := 0; i < 10; i++ {
		c := time.Duration(222+i) * time.Millisecond // server ≈ 200 ms
		spans = append(spans, call("histfront", svc, "GET /slow", "slow", now.Add(time.Duration(i)*time.Second+500*time.Millisecond), c, false)...)
		slow = append(slow, c*9/10)
	}
	s.postTraces(t, spans)

	var lat struct {
		TimedCount json.Number `json:"timedCount"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		s.getJSON(t, "/api/v1/latency?service="+svc, &lat)
		if n, _ := lat.TimedCount.Int64(); n == 20 || time.Now().After(deadline) {
			if n != 20 {
				t.Fatalf("latency of %s: timedCount %s, want 20", svc, lat.TimedCount)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	b := newTab(t, s.base)
	b.open("latency?service=" + svc)
	bars := `[data-testid=latency-panel] [data-testid=hist-bar-link]`
	b.wait(`document.querySelectorAll('`+bars+`').length >= 2`, 15*time.Second, "the histogram's bar links")
	type bar struct {
		Lo, Hi, Count float64
		Href, Title   string
	}
	all := eval[[]bar](b, `[...document.querySelectorAll('`+bars+`')].map(a => ({lo: +a.dataset.lo, hi: +a.dataset.hi, count: +a.dataset.count,
		href: a.getAttribute('href'), title: a.querySelector('title').textContent}))`)
	// The bar of the slow cluster holding the most spans.
	pick := -1
	for i, x := range all {
		if x.Lo >= float64(100*time.Millisecond) && (pick < 0 || x.Count > all[pick].Count) {
			pick = i
		}
	}
	if pick < 0 {
		t.Fatalf("no bar in the slow cluster: %+v", all)
	}
	br := all[pick]
	var want int
	for _, d := range append(slices.Clone(fast), slow...) {
		if float64(d) >= br.Lo && float64(d) <= br.Hi {
			want++
		}
	}
	if want == 0 || float64(want) != br.Count {
		t.Fatalf("bar [%v, %v] counts %v spans, %d seeded durations fall in it", br.Lo, br.Hi, br.Count, want)
	}
	if cursor := eval[string](b, fmt.Sprintf(`getComputedStyle(document.querySelectorAll('%s')[%d].querySelector('rect')).cursor`, bars, pick)); cursor != "pointer" {
		t.Errorf("bar cursor %q, want pointer", cursor)
	}
	if len(br.Title) < 12 || br.Title[:12] != "Traces from " {
		t.Errorf("bar title %q, want Traces from X to Y", br.Title)
	}
	t.Logf("bar %d of %d: [%v, %v] ns, %v spans, %s", pick, len(all), br.Lo, br.Hi, br.Count, br.Href)

	b.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`%s[data-lo="%s"] rect`, bars, strconv.FormatFloat(br.Lo, 'f', -1, 64)))))
	b.wait(`document.body.dataset.view === 'traces' && (document.querySelector('[data-testid=trace-count]') || document.querySelector('[data-testid=trace-results] .msg'))`, 10*time.Second, "the trace search")
	p := eval[map[string]string](b, `__flowscope.route().params`)
	lo, hi := fmt.Sprintf("%.0fns", br.Lo), fmt.Sprintf("%.0fns", br.Hi)
	if p["service"] != svc || p["minDuration"] != lo || p["maxDuration"] != hi {
		t.Fatalf("trace search params %v, want service %s, minDuration %s, maxDuration %s", p, svc, lo, hi)
	}
	if v := eval[string](b, `document.querySelector('[data-testid=tr-min]').value + ' ' + document.querySelector('[data-testid=tr-max]').value`); v != lo+" "+hi {
		t.Errorf("duration inputs %q, want %q", v, lo+" "+hi)
	}
	b.wait(fmt.Sprintf(`document.querySelectorAll('[data-testid=trace-row]').length === %d`, want), 10*time.Second, "the slow traces in the bar")
	ids := eval[[]string](b, `[...document.querySelectorAll('[data-testid=trace-row]')].map(r => r.dataset.traceId)`)

	var api struct {
		Traces []struct {
			TraceID       string `json:"traceId"`
			DurationNanos string `json:"durationNanos"`
		} `json:"traces"`
	}
	s.getJSON(t, "/api/v1/traces?"+url.Values{"service": {svc}, "minDuration": {lo}, "maxDuration": {hi}, "limit": {"1000"}}.Encode(), &api)
	if len(api.Traces) != want {
		t.Fatalf("API: %d traces in [%s, %s], want %d", len(api.Traces), lo, hi, want)
	}
	var apiIDs []string
	for _, tr := range api.Traces {
		apiIDs = append(apiIDs, tr.TraceID)
		// The root is the client span, 1/0.9 of the server span.
		d, _ := strconv.ParseFloat(tr.DurationNanos, 64)
		if d*0.9 < br.Lo-1e3 || d*0.9 > br.Hi+1e3 {
			t.Errorf("trace %s: duration %v ns, server span outside [%v, %v]", tr.TraceID, d, br.Lo, br.Hi)
		}
	}
	slices.Sort(ids)
	slices.Sort(apiIDs)
	if !slices.Equal(ids, apiIDs) {
		t.Errorf("UI lists %v, API %v", ids, apiIDs)
	}
	b.shot("histogram-traces")

	// An edge's histogram (client-side durations) links to the search by
	// edge, whose duration bounds apply to the call.
	b.open("latency?source=histfront&target=" + svc)
	b.wait(`document.querySelectorAll('`+bars+`').length >= 2`, 15*time.Second, "the edge histogram's bar links")
	edgeBars := eval[[]bar](b, `[...document.querySelectorAll('`+bars+`')].map(a => ({lo: +a.dataset.lo, hi: +a.dataset.hi, count: +a.dataset.count,
		href: a.getAttribute('href'), title: a.querySelector('title').textContent}))`)
	pick = -1
	for i, x := range edgeBars {
		if x.Lo < float64(100*time.Millisecond) && (pick < 0 || x.Count > edgeBars[pick].Count) {
			pick = i
		}
	}
	if pick < 0 {
		t.Fatalf("no edge bar in the fast cluster: %+v", edgeBars)
	}
	eb := edgeBars[pick]
	var calls []time.Duration // the client spans' durations
	for _, d := range append(slices.Clone(fast), slow...) {
		calls = append(calls, d*10/9)
	}
	want = 0
	for _, d := range calls {
		if float64(d) >= eb.Lo && float64(d) <= eb.Hi {
			want++
		}
	}
	if want == 0 || float64(want) != eb.Count {
		t.Fatalf("edge bar [%v, %v] counts %v calls, %d seeded calls fall in it", eb.Lo, eb.Hi, eb.Count, want)
	}
	b.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`%s[data-lo="%s"] rect`, bars, strconv.FormatFloat(eb.Lo, 'f', -1, 64)))))
	b.wait(`document.body.dataset.view === 'traces' && document.querySelector('[data-testid=trace-count]')`, 10*time.Second, "the edge's trace search")
	p = eval[map[string]string](b, `__flowscope.route().params`)
	if p["source"] != "histfront" || p["target"] != svc || p["service"] != "" || p["minDuration"] != fmt.Sprintf("%.0fns", eb.Lo) {
		t.Fatalf("edge trace search params %v", p)
	}
	b.wait(fmt.Sprintf(`document.querySelectorAll('[data-testid=trace-row]').length === %d`, want), 10*time.Second, "the edge's calls in the bar")
	b.shot("histogram-traces-edge")
	b.checkClean()
}
