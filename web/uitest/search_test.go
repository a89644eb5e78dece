package uitest

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/internal/otlptest"
)

// Issue 15, item 6: the trace search's results (a compact sortable table
// and a duration-over-time scatter plot) and the search by edge.

// searchTrace is one seeded trace of seedSearch, and what the search must
// say of it.
type searchTrace struct {
	id     string
	i      int
	start  time.Time
	dur    time.Duration
	spans  int
	errors int
	// authCall is the hex ID of the client span of its api → auth call,
	// "" without one; authOp that span's name.
	authCall, authOp string
}

// seedSearch sends 40 traces rooted in web (GET /page/K), two seconds
// apart, with durations from 300 µs to 2.4 s (all different: more than
// two decades), 1 to 8 spans and some errors (one or two spans):
//
//	web GET /page/K (server)
//	├ web call api (client) → api GET /api (server)          span count ≥ 3
//	│   └ api call auth N (client) → auth check (server)     every third trace (i % 3 == 0)
//	└ web step J (internal) …                                up to the span count
func seedSearch(t *testing.T, s *server) []searchTrace {
	t.Helper()
	base := time.Now().Add(-100 * time.Second)
	var spans []span
	var out []searchTrace
	for i := range 40 {
		c := 1 + i%8
		hasAuth := i%3 == 0
		if hasAuth {
			c = max(c, 5)
		}
		tid, ids := newIDs(c)
		st := base.Add(time.Duration(i) * 2 * time.Second)
		d := time.Duration(float64(300*time.Microsecond) * math.Pow(10, float64((i*7)%40)/10))
		at := func(f float64) time.Time { return st.Add(time.Duration(f * float64(d))) }
		part := func(f float64) time.Duration { return time.Duration(f * float64(d)) }
		tr := searchTrace{id: hex.EncodeToString(tid), i: i, start: st, dur: d, spans: c}
		var sp []span
		sp = append(sp, span{service: "web", traceID: tid, spanID: ids[0], name: fmt.Sprintf("GET /page/%d", i%5), kind: tracepb.Span_SPAN_KIND_SERVER, start: st, dur: d})
		if c >= 3 {
			sp = append(sp,
				span{service: "web", traceID: tid, spanID: ids[1], parentID: ids[0], name: "call api", kind: tracepb.Span_SPAN_KIND_CLIENT, start: at(0.05), dur: part(0.8)},
				span{service: "api", traceID: tid, spanID: ids[2], parentID: ids[1], name: "GET /api", kind: tracepb.Span_SPAN_KIND_SERVER, start: at(0.1), dur: part(0.7)})
		}
		if hasAuth {
			tr.authOp = fmt.Sprintf("call auth %d", i%2)
			tr.authCall = hex.EncodeToString(ids[3])
			sp = append(sp,
				span{service: "api", traceID: tid, spanID: ids[3], parentID: ids[2], name: tr.authOp, kind: tracepb.Span_SPAN_KIND_CLIENT, start: at(0.2), dur: part(0.4)},
				span{service: "auth", traceID: tid, spanID: ids[4], parentID: ids[3], name: "check", kind: tracepb.Span_SPAN_KIND_SERVER, start: at(0.25), dur: part(0.3)})
		}
		for j := len(sp); j < c; j++ {
			sp = append(sp, span{service: "web", traceID: tid, spanID: ids[j], parentID: ids[0], name: fmt.Sprintf("step %d", j), kind: tracepb.Span_SPAN_KIND_INTERNAL,
				start: at(0.85 + float64(j)*0.01), dur: part(0.005)})
		}
		switch i % 7 {
		case 2:
			sp[0].err = true
			tr.errors = 1
		case 5:
			sp[0].err = true
			tr.errors = 1
			if len(sp) > 1 {
				sp[len(sp)-1].err = true
				tr.errors = 2
			}
		}
		spans = append(spans, sp...)
		out = append(out, tr)
	}
	s.postTraces(t, spans)
	s.waitEdge(t, "api", "auth")
	return out
}

// apiSummary is a trace summary of GET /api/v1/traces.
type apiSummary struct {
	TraceID       string   `json:"traceId"`
	RootService   string   `json:"rootServiceName"`
	RootOperation string   `json:"rootOperation"`
	Start         string   `json:"startTimeUnixNano"`
	Duration      string   `json:"durationNanos"`
	SpanCount     string   `json:"spanCount"`
	ErrorCount    string   `json:"errorCount"`
	Services      []string `json:"services"`
	MatchedSpanID string   `json:"matchedSpanId"`
}

func (a apiSummary) num(key string) int64 {
	v := map[string]string{"start": a.Start, "duration": a.Duration, "spans": a.SpanCount, "errors": a.ErrorCount}[key]
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// sortSummaries orders as the UI promises: by key (dir asc or desc), ties
// newest first, then by trace ID.
func sortSummaries(list []apiSummary, key, dir string) []string {
	v := slices.Clone(list)
	slices.SortStableFunc(v, func(a, b apiSummary) int {
		c := cmp.Compare(a.num(key), b.num(key))
		if dir == "desc" {
			c = -c
		}
		return cmp.Or(c, cmp.Compare(b.num("start"), a.num("start")), cmp.Compare(a.TraceID, b.TraceID))
	})
	ids := make([]string, len(v))
	for i, x := range v {
		ids[i] = x.TraceID
	}
	return ids
}

// searchTab is a tab whose viewport is 1440×900 CSS pixels (the window of
// the shared browser is that size, its viewport smaller).
func searchTab(t *testing.T, base string) *tab {
	t.Helper()
	b := newTab(t, base)
	if _, err := chromedp.Call(b.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 1440, Height: 900, DeviceScaleFactor: 1}); err != nil {
		t.Fatal(err)
	}
	return b
}

const rowIDs = `[...document.querySelectorAll('[data-testid=trace-row]')].map(r => r.dataset.traceId)`

// TestTraceSearch covers the results of a search: the table's density,
// its sorting (kept in the URL) and the scatter plot.
func TestTraceSearch(t *testing.T) {
	browser(t)
	s := startCollector(t)
	seeded := seedSearch(t, s)
	var api struct {
		Traces []apiSummary `json:"traces"`
	}
	s.getJSON(t, "/api/v1/traces?limit=100", &api)
	if len(api.Traces) != len(seeded) {
		t.Fatalf("API: %d traces, want the %d seeded", len(api.Traces), len(seeded))
	}
	b := searchTab(t, s.base)
	t.Run("Table", func(t *testing.T) { testSearchTable(b.with(t), api.Traces) })
	t.Run("Sort", func(t *testing.T) { testSearchSort(b.with(t), api.Traces) })
	t.Run("Scatter", func(t *testing.T) { testSearchScatter(b.with(t), api.Traces) })
	b.checkClean()
}

// At 1440×900 at least 25 results are inside the viewport, newest first,
// with the numbers of the API.
func testSearchTable(b *tab, list []apiSummary) {
	t := b.t
	t0 := time.Now()
	b.open("traces?limit=100")
	b.wait(`document.querySelectorAll('[data-testid=trace-row]').length === 40 && document.querySelectorAll('[data-testid=scatter-dot]').length === 40`, 15*time.Second, "40 results")
	t.Logf("open to 40 rows and dots: %v", time.Since(t0))
	vp := eval[map[string]float64](b, `(() => {
		const rows = [...document.querySelectorAll('[data-testid=trace-row]')];
		const inView = rows.filter(r => { const b = r.getBoundingClientRect(); return b.top >= 0 && b.bottom <= innerHeight && b.height > 0; });
		return {w: innerWidth, h: innerHeight, inView: inView.length, rowHeight: rows[0].getBoundingClientRect().height,
			first: rows[0].getBoundingClientRect().top};
	})()`)
	t.Logf("viewport %v×%v: %v rows inside, row height %.1f px, first row at %.0f px", vp["w"], vp["h"], vp["inView"], vp["rowHeight"], vp["first"])
	if vp["w"] != 1440 || vp["h"] != 900 {
		t.Errorf("viewport %v×%v, want 1440×900", vp["w"], vp["h"])
	}
	if vp["inView"] < 25 {
		t.Errorf("%v result rows inside the 1440×900 viewport, want at least 25", vp["inView"])
	}
	if got, want := eval[[]string](b, rowIDs), sortSummaries(list, "start", "desc"); !slices.Equal(got, want) {
		t.Errorf("default order %v, want newest first %v", got, want)
	}
	// Each row says what the API says.
	rows := eval[[]map[string]string](b, `[...document.querySelectorAll('[data-testid=trace-row]')].map(r => ({
		id: r.dataset.traceId, root: r.querySelector('.c-root').innerText, spans: r.querySelector('.c-spans').innerText,
		errors: r.querySelector('.c-errors').innerText, marked: String(!!r.querySelector('.c-errors [data-testid=err-count]')),
		services: r.querySelector('.c-svcs').title, href: r.querySelector('[data-testid=trace-link]').getAttribute('href'),
		lines: String(Math.round(r.getBoundingClientRect().height))}))`)
	byID := map[string]apiSummary{}
	for _, a := range list {
		byID[a.TraceID] = a
	}
	for _, r := range rows {
		a := byID[r["id"]]
		wantHref := "#/trace/" + a.TraceID
		if a.MatchedSpanID != "" {
			wantHref += "?span=" + a.MatchedSpanID
		}
		if r["root"] != a.RootService+" "+a.RootOperation || r["spans"] != a.SpanCount || r["errors"] != a.ErrorCount ||
			r["marked"] != strconv.FormatBool(a.ErrorCount != "0") || r["services"] != strings.Join(a.Services, ", ") || r["href"] != wantHref {
			t.Errorf("row %v, API %+v (link want %s)", r, a, wantHref)
		}
	}
	if c := eval[string](b, `document.querySelector('[data-testid=trace-count]').innerText`); !strings.Contains(c, "40 traces") || !strings.Contains(c, "newest first") {
		t.Errorf("count line %q, want 40 traces, newest first", c)
	}
	b.shot("search-table")
	// The light scheme, for a look (the colours are app.css's variables).
	setScheme := func(v string) {
		if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v}}}); err != nil {
			t.Fatal(err)
		}
	}
	setScheme("light")
	defer setScheme("dark")
	b.wait(`getComputedStyle(document.body).backgroundColor !== 'rgb(13, 17, 23)'`, 5*time.Second, "the light scheme")
	b.shot("search-table-light")
}

// Sorting by duration, span count and errors, both ways, by a click or
// the keyboard, kept in the URL across a reload.
func testSearchSort(b *tab, list []apiSummary) {
	t := b.t
	b.open("traces?limit=100")
	b.wait(`document.querySelectorAll('[data-testid=trace-row]').length === 40`, 15*time.Second, "40 results")
	ariaSort := `Object.fromEntries([...document.querySelectorAll('[data-testid=trace-table] th.sortable')].map(th => [th.querySelector('button').dataset.testid.slice(5), th.getAttribute('aria-sort')]))`
	if a := eval[map[string]string](b, ariaSort); a["start"] != "descending" || a["duration"] != "none" {
		t.Errorf("aria-sort before sorting: %v, want start descending", a)
	}
	for _, c := range []struct {
		key, dir string
		keyboard bool
	}{
		{"duration", "desc", false}, {"duration", "asc", false},
		{"spans", "desc", true}, {"spans", "asc", true},
		{"errors", "desc", false}, {"errors", "asc", false},
		{"start", "desc", false}, {"start", "asc", false},
	} {
		btn := `[data-testid=sort-` + c.key + `]`
		t0 := time.Now()
		if c.keyboard {
			b.do(chromedp.Focus(chromedp.CSS(btn)), chromedp.KeyEvent("\r"))
		} else {
			b.do(chromedp.Click(chromedp.CSS(btn)))
		}
		ready := fmt.Sprintf(`(p => (p.sort || 'start') === %q && (p.dir || 'desc') === %q)(__flowscope.route().params) && document.querySelector('[data-testid=trace-count]').dataset.sort === %[1]q && document.querySelector('[data-testid=trace-count]').dataset.dir === %[2]q`, c.key, c.dir)
		b.wait(ready, 5*time.Second, "sorted by "+c.key+" "+c.dir)
		took := time.Since(t0)
		want := sortSummaries(list, c.key, c.dir)
		if got := eval[[]string](b, rowIDs); !slices.Equal(got, want) {
			t.Errorf("sorted by %s %s: %v, want %v", c.key, c.dir, got, want)
		}
		p := eval[map[string]string](b, `__flowscope.route().params`)
		if c.key == "start" && c.dir == "desc" {
			if p["sort"] != "" || p["dir"] != "" {
				t.Errorf("the default order keeps sort=%q dir=%q in the URL", p["sort"], p["dir"])
			}
		} else if p["sort"] != c.key || p["dir"] != c.dir {
			t.Errorf("URL sort=%q dir=%q, want %s %s", p["sort"], p["dir"], c.key, c.dir)
		}
		aria := eval[map[string]string](b, ariaSort)
		for k, v := range aria {
			want := "none"
			if k == c.key {
				want = map[string]string{"asc": "ascending", "desc": "descending"}[c.dir]
			}
			if v != want {
				t.Errorf("sorted by %s %s: aria-sort of %s is %q, want %q", c.key, c.dir, k, v, want)
			}
		}
		if c.keyboard {
			if f := eval[string](b, `document.activeElement && document.activeElement.dataset.testid || ''`); f != "sort-"+c.key {
				t.Errorf("after sorting by keyboard the focus is on %q, want the sort-%s button", f, c.key)
			}
		}
		// Sorting does not search again: one request since the page opened.
		if n := eval[int](b, `performance.getEntriesByType('resource').filter(e => e.name.includes('/api/v1/traces?')).length`); n != 1 {
			t.Errorf("sorted by %s %s: %d requests to /api/v1/traces since the page opened, want 1 (sorting is local)", c.key, c.dir, n)
		}
		t.Logf("sort %s %s: %v (click to sorted rows)", c.key, c.dir, took)
		if c.key == "duration" && c.dir == "desc" {
			b.shot("search-sorted-duration")
		}
		// A reload keeps the order.
		if c.dir == "asc" || c.key == "duration" {
			if c.dir == "asc" {
				ms := []float64{searchRenderMs(b, c.key), searchRenderMs(b, c.key)}
				t.Logf("sort %s in the page (40 rows and dots, layout included): %.1f ms, %.1f ms", c.key, ms[0], ms[1])
			}
			route := "traces?" + url.Values{"limit": {"100"}, "sort": {p["sort"]}, "dir": {p["dir"]}}.Encode()
			b.open(route)
			b.wait(`document.querySelectorAll('[data-testid=trace-row]').length === 40`, 15*time.Second, "the results after a reload")
			if got := eval[[]string](b, rowIDs); !slices.Equal(got, want) {
				t.Errorf("after reloading %s: %v, want %v", route, got, want)
			}
		}
	}
}

// searchRenderMs is the time in the page to sort the results and redraw
// the table and the plot after a header click, layout included (ms).
func searchRenderMs(b *tab, key string) float64 {
	return eval[float64](b, `(() => {
		const t0 = performance.now();
		document.querySelector('[data-testid=sort-`+key+`]').click();
		void document.body.offsetHeight;
		return performance.now() - t0;
	})()`)
}

type dotInfo struct {
	ID    string  `json:"id"`
	Error string  `json:"error"`
	Shape string  `json:"shape"`
	Fill  string  `json:"fill"`
	R     float64 `json:"r"`
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	Top   bool    `json:"top"`
	Href  string  `json:"href"`
}

const dotsJS = `[...document.querySelectorAll('[data-testid=scatter-dot]')].map(a => {
	const m = a.querySelector('.sc-mark'), b = m.getBoundingClientRect();
	const x = b.left + b.width / 2, y = b.top + b.height / 2;
	const hit = document.elementFromPoint(x, y);
	return {id: a.dataset.traceId, error: a.dataset.error, shape: m.tagName, fill: getComputedStyle(m).fill, r: +a.dataset.r, x, y,
		top: !!hit && hit.closest('[data-testid=scatter-dot]') === a, href: a.getAttribute('href')};
})`

// The scatter plot: one dot per result, errors marked, a log axis for
// durations over three decades, sizes by span count; hovering shows the
// tooltip and highlights the row, a click or Enter opens the trace.
func testSearchScatter(b *tab, list []apiSummary) {
	t := b.t
	b.open("traces?limit=100")
	b.wait(`document.querySelectorAll('[data-testid=scatter-dot]').length === 40`, 15*time.Second, "40 dots")
	dots := eval[[]dotInfo](b, dotsJS)
	byID := map[string]apiSummary{}
	for _, a := range list {
		byID[a.TraceID] = a
	}
	seen := map[string]bool{}
	var okFill, errFill string
	var minR, maxR dotInfo
	for _, d := range dots {
		a, ok := byID[d.ID]
		if !ok || seen[d.ID] {
			t.Errorf("dot for %q: not a result, or twice", d.ID)
			continue
		}
		seen[d.ID] = true
		isErr := a.ErrorCount != "0"
		if (d.Error == "1") != isErr || (d.Shape == "path") != isErr {
			t.Errorf("dot %s: error %s, shape %s; the trace has %s errors", d.ID, d.Error, d.Shape, a.ErrorCount)
		}
		if isErr {
			errFill = d.Fill
		} else {
			okFill = d.Fill
		}
		wantHref := "#/trace/" + d.ID
		if a.MatchedSpanID != "" {
			wantHref += "?span=" + a.MatchedSpanID
		}
		if d.Href != wantHref {
			t.Errorf("dot %s links to %s, want %s", d.ID, d.Href, wantHref)
		}
		if minR.ID == "" || a.num("spans") < byID[minR.ID].num("spans") {
			minR = d
		}
		if maxR.ID == "" || a.num("spans") > byID[maxR.ID].num("spans") {
			maxR = d
		}
	}
	if len(seen) != len(list) {
		t.Errorf("%d distinct dots, want %d", len(seen), len(list))
	}
	if okFill == "" || errFill == "" || okFill == errFill {
		t.Errorf("fills: ok %q, error %q; want two different colours", okFill, errFill)
	}
	if maxR.R <= minR.R {
		t.Errorf("dot radius %v for %s spans, %v for %s spans: want bigger dots for more spans", maxR.R, byID[maxR.ID].SpanCount, minR.R, byID[minR.ID].SpanCount)
	}
	if sc := eval[string](b, `document.querySelector('[data-testid=scatter-svg]').dataset.scale`); sc != "log" {
		t.Errorf("durations 300µs–2.4s: scale %q, want log", sc)
	}
	// Slower traces are higher.
	slow, fast := dots[0], dots[0]
	for _, d := range dots {
		if byID[d.ID].num("duration") > byID[slow.ID].num("duration") {
			slow = d
		}
		if byID[d.ID].num("duration") < byID[fast.ID].num("duration") {
			fast = d
		}
	}
	if slow.Y >= fast.Y {
		t.Errorf("slowest trace's dot at y %v, fastest at %v: want the slowest higher", slow.Y, fast.Y)
	}

	// Hover: a dot not covered by another one.
	i := slices.IndexFunc(dots, func(d dotInfo) bool { return d.Top && d.Error == "1" })
	if i < 0 {
		t.Fatalf("no error dot is uncovered: %+v", dots)
	}
	d := dots[i]
	a := byID[d.ID]
	b.do(chromedp.MouseEvent("mouseMoved", d.X, d.Y))
	b.wait(fmt.Sprintf(`(r => r.length === 1 && r[0].dataset.traceId === %q)(document.querySelectorAll('[data-testid=trace-row].hl')) && !document.querySelector('[data-testid=scatter-tip]').hidden`, d.ID), 5*time.Second, "the hovered dot's row and tooltip")
	tip := strings.Join(strings.Fields(eval[string](b, `document.querySelector('[data-testid=scatter-tip]').innerText`)), " ")
	for _, want := range []string{a.RootService + ": " + a.RootOperation, "spans " + a.SpanCount, "errors " + a.ErrorCount, "duration"} {
		if !strings.Contains(tip, want) {
			t.Errorf("tooltip %q lacks %q", tip, want)
		}
	}
	b.shot("search-scatter-hover")
	// Hovering a row rings its dot.
	b.do(chromedp.MouseEvent("mouseMoved", 5, 5))
	b.wait(`document.querySelectorAll('[data-testid=trace-row].hl').length === 0`, 5*time.Second, "the highlight to go")
	rowPt := eval[point](b, `(r => ({x: r.left + 40, y: r.top + r.height / 2}))(document.querySelectorAll('[data-testid=trace-row]')[3].getBoundingClientRect())`)
	b.do(chromedp.MouseEvent("mouseMoved", rowPt.X, rowPt.Y))
	b.wait(`(r => r.getAttribute('visibility') === 'visible' && r.dataset.traceId === document.querySelectorAll('[data-testid=trace-row]')[3].dataset.traceId)(document.querySelector('[data-testid=scatter-ring]'))`, 5*time.Second, "the row's dot to be ringed")

	// A click opens the trace (at the matched span).
	b.do(chromedp.MouseClickXY(d.X, d.Y))
	b.wait(fmt.Sprintf(`__flowscope.route().name === 'trace' && __flowscope.route().arg === %q`, d.ID), 5*time.Second, "the clicked trace")
	if sp := eval[string](b, `__flowscope.route().params.span || ''`); sp != a.MatchedSpanID {
		t.Errorf("clicked dot opened span %q, want the matched span %q", sp, a.MatchedSpanID)
	}
	b.wait(`document.querySelectorAll('[data-testid=span-row]').length > 0`, 10*time.Second, "the waterfall")

	// The keyboard: focus shows the tooltip, Enter opens the trace.
	b.open("traces?limit=100")
	b.wait(`document.querySelectorAll('[data-testid=scatter-dot]').length === 40`, 15*time.Second, "40 dots")
	k := dots[(i+7)%len(dots)]
	b.do(chromedp.Focus(chromedp.CSS(fmt.Sprintf(`[data-testid=scatter-dot][data-trace-id="%s"]`, k.ID))))
	b.wait(fmt.Sprintf(`!document.querySelector('[data-testid=scatter-tip]').hidden && document.querySelector('[data-testid=trace-row].hl')?.dataset.traceId === %q`, k.ID), 5*time.Second, "the focused dot's tooltip and row")
	b.do(chromedp.KeyEvent("\r"))
	b.wait(fmt.Sprintf(`__flowscope.route().name === 'trace' && __flowscope.route().arg === %q`, k.ID), 5*time.Second, "the trace opened by Enter")
}

// TestTraceSearchEdge searches by a call of the service map: from the
// route, the form fills in and lists exactly the traces of the seed with
// an api → auth call, each linked at that call's client span.
func TestTraceSearchEdge(t *testing.T) {
	browser(t)
	s := startCollector(t)
	seeded := seedSearch(t, s)
	b := searchTab(t, s.base)
	cases := []struct {
		name, route, header string
		want                func(searchTrace) bool
	}{
		{"edge", "traces?source=api&target=auth&limit=100", "calls api → auth",
			func(x searchTrace) bool { return x.authCall != "" }},
		{"edge-op-error", "traces?" + url.Values{"source": {"api"}, "target": {"auth"}, "operation": {"call auth 1"}, "status": {"error"}, "limit": {"100"}}.Encode(),
			"calls api → auth, operation call auth 1, status error",
			func(x searchTrace) bool { return x.authOp == "call auth 1" && x.errors > 0 }},
		// min/maxDuration bound the call (40 % of the trace), not the trace.
		{"edge-duration", "traces?source=api&target=auth&minDuration=100ms&limit=100", "calls api → auth, duration ≥ 100ms",
			func(x searchTrace) bool {
				return x.authCall != "" && time.Duration(0.4*float64(x.dur)) >= 100*time.Millisecond
			}},
		{"reverse", "traces?source=auth&target=api&limit=100", "calls auth → api",
			func(x searchTrace) bool { return false }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := b.with(t)
			want := map[string]string{} // trace → the call's client span
			for _, x := range seeded {
				if c.want(x) {
					want[x.id] = x.authCall
				}
			}
			t0 := time.Now()
			b.open(c.route)
			b.wait(`(c => c && +c.dataset.count === `+strconv.Itoa(len(want))+`)(document.querySelector('[data-testid=trace-count]'))`, 15*time.Second, fmt.Sprintf("%d results", len(want)))
			t.Logf("%s: %d traces in %v", c.name, len(want), time.Since(t0))
			rows := eval[[]map[string]string](b, `[...document.querySelectorAll('[data-testid=trace-row]')].map(r => ({id: r.dataset.traceId, href: r.querySelector('[data-testid=trace-link]').getAttribute('href')}))`)
			got := map[string]string{}
			for _, r := range rows {
				got[r["id"]] = r["href"]
			}
			if len(got) != len(want) {
				t.Errorf("%d rows, want %d", len(got), len(want))
			}
			for id, sp := range want {
				if h, ok := got[id]; !ok {
					t.Errorf("trace %s (with the call) missing", id)
				} else if h != "#/trace/"+id+"?span="+sp {
					t.Errorf("trace %s links to %s, want the call's client span %s", id, h, sp)
				}
			}
			if hd := eval[string](b, `document.querySelector('[data-testid=search-summary]').innerText`); !strings.HasPrefix(hd, c.header) {
				t.Errorf("header %q, want it to start with %q", hd, c.header)
			}
			form := eval[map[string]string](b, `({mode: document.querySelector('[data-testid=tr-mode]').value, source: document.querySelector('[data-testid=tr-source]').value,
				target: document.querySelector('[data-testid=tr-target]').value, serviceHidden: String(document.querySelector('[data-testid=tr-service]').closest('.field').hidden),
				status: document.querySelector('[data-testid=tr-status]').value})`)
			p := eval[map[string]string](b, `__flowscope.route().params`)
			if form["mode"] != "edge" || form["source"] != p["source"] || form["target"] != p["target"] || form["serviceHidden"] != "true" || form["status"] != p["status"] {
				t.Errorf("form %v for route %v", form, p)
			}
			if p["operation"] != "" {
				b.wait(`document.querySelector('[data-testid=tr-operation]').value === `+js(p["operation"]), 5*time.Second, "the operation in the form")
			}
			if c.name == "edge" {
				b.shot("search-edge")
			}
		})
	}
	t.Run("form", func(t *testing.T) {
		b := b.with(t)
		// From a service search to an edge search through the form.
		b.open("traces?service=web&limit=100")
		b.wait(`document.querySelectorAll('[data-testid=trace-row]').length === 40`, 15*time.Second, "web's 40 traces")
		setField := func(testid, v string) {
			eval[bool](b, `(e => (e.value = `+js(v)+`, e.dispatchEvent(new Event('change')), true))(document.querySelector('[data-testid=`+testid+`]'))`)
		}
		setField("tr-mode", "edge")
		b.wait(`!document.querySelector('[data-testid=tr-source]').closest('.field').hidden && document.querySelector('[data-testid=tr-service]').closest('.field').hidden`, 5*time.Second, "the source and target fields")
		b.do(chromedp.SendKeys(chromedp.CSS(`[data-testid=tr-source]`), "api"), chromedp.SendKeys(chromedp.CSS(`[data-testid=tr-target]`), "auth"))
		setField("tr-status", "error")
		b.do(chromedp.Click(chromedp.CSS(`[data-testid=tr-submit]`)))
		var want []string
		for _, x := range seeded {
			if x.authCall != "" && x.errors > 0 {
				want = append(want, x.id)
			}
		}
		b.wait(`(p => p.source === 'api' && p.target === 'auth' && !p.service && p.status === 'error')(__flowscope.route().params) && (c => c && +c.dataset.count === `+strconv.Itoa(len(want))+`)(document.querySelector('[data-testid=trace-count]'))`, 15*time.Second, "the edge search from the form")
		got := eval[[]string](b, rowIDs)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("form edge search: %v, want %v", got, want)
		}
		// Source and target suggestions come from the flow graph.
		if opts := eval[[]string](b, `[...document.querySelectorAll('#tr-source-list option')].map(o => o.value)`); !slices.Contains(opts, "api") || !slices.Contains(opts, "web") {
			t.Errorf("source suggestions %v, want the callers web and api", opts)
		}
		// Without a target the form refuses.
		setField("tr-target", "")
		b.do(chromedp.Click(chromedp.CSS(`[data-testid=tr-submit]`)))
		b.wait(`document.querySelector('[data-testid=tr-form-error]').textContent.includes('target')`, 5*time.Second, "the form's error")
	})
	t.Run("both", func(t *testing.T) {
		// service with source is refused by the API: the view says so.
		b := b.with(t)
		b.allow("400")
		b.open("traces?service=web&source=api&target=auth")
		b.wait(`document.querySelector('[data-testid=trace-results] [data-testid=msg-error]')`, 10*time.Second, "the API's 400")
		if m := eval[string](b, `document.querySelector('[data-testid=trace-results] [data-testid=msg-error]').innerText`); !strings.Contains(m, "400") {
			t.Errorf("error %q, want the API's 400", m)
		}
	})
	b.checkClean()
}

// TestTraceSearchXSS: markup in service, operation and attribute names
// shows as text in the table, the chart's tooltip and the header.
func TestTraceSearchXSS(t *testing.T) {
	browser(t)
	s := startCollector(t)
	svcA, svcB := "shop "+xssScript, xssImg
	op := xssSVG
	now := time.Now()
	var spans []span
	for i := 0; i < 6; i++ {
		c := call(svcA, svcB, op, xssQuote, now.Add(-time.Duration(60-i)*time.Second), time.Duration(5+i)*time.Millisecond, i%2 == 0)
		c[0].attrs = []*commonpb.KeyValue{otlptest.Str("note", xssQuote)}
		spans = append(spans, c...)
	}
	// One trace through five services (svcA and four more with markup):
	// the table shows two chips and "+3 more", the names in its title.
	others := []string{"c1 " + xssQuote, "c2 " + xssSVG, "c3 " + xssScript, "c4 " + xssImg}
	tid, ids := newIDs(1 + len(others))
	wide := now.Add(-10 * time.Second)
	spans = append(spans, span{service: svcA, traceID: tid, spanID: ids[0], name: op, kind: tracepb.Span_SPAN_KIND_SERVER, start: wide, dur: 20 * time.Millisecond,
		attrs: []*commonpb.KeyValue{otlptest.Str("note", xssQuote)}})
	for k, o := range others {
		spans = append(spans, span{service: o, traceID: tid, spanID: ids[k+1], parentID: ids[0], name: "work", kind: tracepb.Span_SPAN_KIND_SERVER,
			start: wide.Add(time.Millisecond), dur: 5 * time.Millisecond})
	}
	wideID := hex.EncodeToString(tid)
	s.postTraces(t, spans)
	s.waitEdge(t, svcA, svcB)
	b := searchTab(t, s.base)
	q := url.QueryEscape
	for _, v := range []struct {
		name, route string
		n           int
		literal     []string
	}{
		{"service", "traces?service=" + q(svcA) + "&attr.note=" + q(xssQuote), 7, []string{"service " + svcA, "note = " + xssQuote, svcA + " " + op, svcB, "+3 more"}},
		{"edge", "traces?source=" + q(svcA) + "&target=" + q(svcB) + "&operation=" + q(op), 6, []string{"calls " + svcA + " → " + svcB + ", operation " + op, svcA + " " + op}},
	} {
		t.Run(v.name, func(t *testing.T) {
			b := b.with(t)
			b.open(v.route)
			b.wait(fmt.Sprintf(`document.querySelectorAll('[data-testid=trace-row]').length === %d && document.querySelectorAll('[data-testid=scatter-dot]').length === %[1]d`, v.n), 15*time.Second, fmt.Sprintf("the %d traces", v.n))
			if v.name == "service" {
				cell := eval[map[string]string](b, `(c => ({title: c.title, chips: String(c.querySelectorAll('.svc').length), more: c.querySelector('[data-testid=more-services]')?.textContent || ''}))(document.querySelector('[data-testid=trace-row][data-trace-id="`+wideID+`"] .c-svcs'))`)
				want := append([]string{svcA}, others...)
				slices.Sort(want)
				if cell["title"] != strings.Join(want, ", ") || cell["chips"] != "2" || cell["more"] != "+3 more" {
					t.Errorf("services cell %v, want 2 chips, +3 more and the title %q", cell, strings.Join(want, ", "))
				}
			}
			if sc := eval[string](b, `document.querySelector('[data-testid=scatter-svg]').dataset.scale`); sc != "linear" {
				t.Errorf("durations 5–10 ms: scale %q, want linear", sc)
			}
			// Hover a dot, from elsewhere (a move to where the pointer
			// already is fires no event), again if the view re-rendered
			// under the pointer meanwhile.
			for try := 0; ; try++ {
				d := eval[dotInfo](b, `(`+dotsJS+`).find(d => d.top)`)
				b.do(chromedp.MouseEvent("mouseMoved", 5, 5), chromedp.MouseEvent("mouseMoved", d.X, d.Y))
				if try == 2 {
					b.wait(`!document.querySelector('[data-testid=scatter-tip]').hidden`, 5*time.Second, "the tooltip")
					break
				}
				if eval[bool](b, `new Promise(r => setTimeout(() => r(!document.querySelector('[data-testid=scatter-tip]').hidden), 1000))`) {
					break
				}
			}
			if tip := eval[string](b, `document.querySelector('[data-testid=scatter-tip] .tip-title').textContent`); tip != svcA+": "+op {
				t.Errorf("tooltip title %q, want %q", tip, svcA+": "+op)
			}
			text := b.text()
			for _, lit := range v.literal {
				if !strings.Contains(text, lit) {
					t.Errorf("the page does not show %q literally", lit)
				}
			}
			if lbl := eval[string](b, `document.querySelector('[data-testid=scatter-dot]').getAttribute('aria-label')`); !strings.HasPrefix(lbl, svcA+": "+op) {
				t.Errorf("dot label %q", lbl)
			}
			assertNoInjection(b)
			b.shot("search-xss-" + v.name)
		})
	}
	b.checkClean()
}
