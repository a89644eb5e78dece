package uitest

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"image"
	"image/png"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Issue 15, items 2, 7 (map) and part of 3: slow and failing on separate
// visual channels, edge → traces, keyboard access.

// healthSeed is the topology of the health tests:
//
//	api → both-svc     slow (p99 5× the hour before) and failing (≥ 10 %)
//	api → slow-svc     slow only
//	api → fail-svc     failing only
//	api → new-svc      slow, but new: no baseline
//	cron → ok-svc      healthy (cron and ok-svc have no other call)
//
// The hour before the range (spans 62–73 minutes ago) has the same calls,
// but new-svc's, at about 20 ms and without errors.
type healthSeed struct {
	traces   map[string][]string // edge key → hex trace IDs of the current calls
	failures map[string][]string // edge key → those with a failed call
}

func seedHealth(t *testing.T, s *server, names map[string]string) *healthSeed {
	t.Helper()
	n := func(k string) string {
		if v, ok := names[k]; ok {
			return v
		}
		return k
	}
	hs := &healthSeed{traces: map[string][]string{}, failures: map[string][]string{}}
	now := time.Now()
	var spans []span
	type edge struct {
		from, to   string
		slow, fail bool
		baseline   bool
	}
	edges := []edge{
		{"api", "both-svc", true, true, true},
		{"api", "slow-svc", true, false, true},
		{"api", "fail-svc", false, true, true},
		{"api", "new-svc", true, false, false},
		{"cron", "ok-svc", false, false, true},
	}
	const calls = 60
	for _, e := range edges {
		from, to := n(e.from), n(e.to)
		key := from + "->" + to
		if e.baseline {
			base := now.Add(-73 * time.Minute)
			for i := range calls {
				d := time.Duration(18+i%5) * time.Millisecond
				spans = append(spans, call(from, to, "GET "+to, "GET /", base.Add(time.Duration(i)*10*time.Second), d, false)...)
			}
		}
		cur := now.Add(-100 * time.Second)
		for i := range calls {
			d := time.Duration(18+i%5) * time.Millisecond
			if e.slow {
				d = time.Duration(100+i%7) * time.Millisecond
			}
			failed := e.fail && i%5 == 0 // 20 %
			sp := call(from, to, "GET "+to, "GET /", cur.Add(time.Duration(i)*1500*time.Millisecond), d, failed)
			id := hex.EncodeToString(sp[0].traceID)
			hs.traces[key] = append(hs.traces[key], id)
			if failed {
				hs.failures[key] = append(hs.failures[key], id)
			}
			spans = append(spans, sp...)
		}
	}
	s.postTraces(t, spans)
	s.waitEdge(t, n("cron"), n("ok-svc"))
	return hs
}

// edgeHealth is FlowMap.state().health.edges[key].
type edgeHealth struct {
	ErrorLevel int      `json:"errorLevel"`
	Slow       bool     `json:"slow"`
	SlowReason string   `json:"slowReason"`
	P99        *float64 `json:"p99"`
	Baseline   *float64 `json:"baseline"`
	Firing     bool     `json:"firing"`
}

type healthState struct {
	Health struct {
		Nodes map[string]edgeHealth `json:"nodes"`
		Edges map[string]edgeHealth `json:"edges"`
	} `json:"health"`
	HasBaseline     bool     `json:"hasBaseline"`
	VisibleNodeIDs  []string `json:"visibleNodeIds"`
	VisibleEdgeKeys []string `json:"visibleEdgeKeys"`
	EdgeLabels      []struct {
		Key    string  `json:"key"`
		Text   string  `json:"text"`
		Left   float64 `json:"left"`
		Top    float64 `json:"top"`
		Right  float64 `json:"right"`
		Bottom float64 `json:"bottom"`
	} `json:"edgeLabels"`
}

func (b *tab) healthState() healthState {
	b.t.Helper()
	return eval[healthState](b, `__flowscope.mapState()`)
}

// openMapReady opens a map route and waits for its data, its baseline and
// a settled layout.
func (b *tab) openMapReady(route string, edges int) {
	b.t.Helper()
	b.open(route)
	b.wait(fmt.Sprintf(`(s => s && s.edges.length >= %d && s.hasBaseline && !s.layoutRunning)(__flowscope.mapState()) && document.querySelector('[data-testid=view-map]').dataset.baseline === 'ready'`, edges), 20*time.Second, "the map, its baseline and its layout on "+route)
}

// TestMapHealth seeds a baseline hour and the current minutes, then checks
// the two channels (state and screenshot), the threshold, unhealthy only,
// labels, the edge's trace links, the keyboard list and the 1m range.
func TestMapHealth(t *testing.T) {
	browser(t)
	s := startCollector(t)
	hs := seedHealth(t, s, nil)

	// The seed, as the API sees it.
	var g struct {
		Edges []struct {
			Source, Target string
			ErrorRate      float64 `json:"errorRate"`
			Latency        struct {
				P99 *float64 `json:"p99"`
			} `json:"latency"`
		} `json:"edges"`
	}
	s.getJSON(t, "/api/v1/flowgraph", &g)
	for _, e := range g.Edges {
		t.Logf("current %s → %s: errors %.1f %%, p99 %v ns", e.Source, e.Target, e.ErrorRate*100, deref(e.Latency.P99))
	}
	from := time.Now().Add(-75 * time.Minute).UnixMilli()
	s.getJSON(t, fmt.Sprintf("/api/v1/flowgraph?start=%d&end=%d", from, from+14*60e3), &g)
	if len(g.Edges) != 4 {
		t.Fatalf("the baseline hour has %d edges, want 4 (spans 62–73 minutes old stored): %+v", len(g.Edges), g.Edges)
	}

	b := newTab(t, s.base)
	t.Run("Marks", func(t *testing.T) { testHealthMarks(b.with(t)) })
	t.Run("Threshold", func(t *testing.T) { testHealthThreshold(b.with(t)) })
	t.Run("UnhealthyOnly", func(t *testing.T) { testHealthUnhealthy(b.with(t)) })
	t.Run("Labels", func(t *testing.T) { testHealthLabels(b.with(t)) })
	t.Run("BaselineCached", func(t *testing.T) { testBaselineCached(b.with(t)) })
	t.Run("EdgeTraces", func(t *testing.T) { testEdgeTraces(b.with(t), s, hs) })
	t.Run("Keyboard", func(t *testing.T) { testMapKeyboard(b.with(t)) })
	t.Run("Range1m", func(t *testing.T) { testRange1m(b.with(t)) })
	b.checkClean()
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// want is the expected marks of an edge.
type want struct {
	errorLevel int
	slow       bool
	reason     string
}

func checkMarks(t *testing.T, st healthState, wants map[string]want) {
	t.Helper()
	for key, w := range wants {
		got, ok := st.Health.Edges[key]
		if !ok {
			t.Errorf("%s: no health in the map's state", key)
			continue
		}
		if got.ErrorLevel != w.errorLevel || got.Slow != w.slow || got.SlowReason != w.reason {
			t.Errorf("%s: errorLevel %d, slow %v (%q), want %d, %v (%q); p99 %v, baseline %v", key, got.ErrorLevel, got.Slow, got.SlowReason,
				w.errorLevel, w.slow, w.reason, deref(got.P99), deref(got.Baseline))
		}
	}
}

// Default settings: colour = errors, the slow mark against the hour before.
func testHealthMarks(b *tab) {
	t := b.t
	b.openMapReady("map", 5)
	st := b.healthState()
	checkMarks(t, st, map[string]want{
		"api->both-svc": {2, true, "baseline"},
		"api->slow-svc": {0, true, "baseline"},
		"api->fail-svc": {2, false, ""},
		"cron->ok-svc":  {0, false, ""},
		"api->new-svc":  {0, false, ""}, // slow, but no baseline and no threshold
	})
	if h := st.Health.Edges["api->new-svc"]; h.Baseline != nil {
		t.Errorf("new edge has a baseline %v", *h.Baseline)
	}
	// Nodes: slow-svc's own requests are slow, fail-svc's fail.
	if n := st.Health.Nodes["slow-svc"]; !n.Slow || n.ErrorLevel != 0 {
		t.Errorf("node slow-svc %+v, want slow without errors", n)
	}
	if n := st.Health.Nodes["fail-svc"]; n.Slow || n.ErrorLevel != 2 {
		t.Errorf("node fail-svc %+v, want errors, not slow", n)
	}
	// The legend counts what is marked, and says the rule.
	legend := eval[string](b, `document.querySelector('[data-testid=map-legend]').innerText`)
	for _, s := range []string{"colour = errors", "slow", "1.5× the hour before"} {
		if !strings.Contains(legend, s) {
			t.Errorf("legend %q lacks %q", legend, s)
		}
	}
	// The same on the screenshot: along each edge's middle, the slow
	// colour on both sides of the line (the double line) and the error
	// colour on it.
	b.do(chromedp.MouseEvent("mouseMoved", 2, 2)) // no hover highlight
	time.Sleep(100 * time.Millisecond)
	img := b.shotImage("map-health-marks")
	for key, w := range map[string]want{
		"api->both-svc": {2, true, ""},
		"api->slow-svc": {0, true, ""},
		"api->fail-svc": {2, false, ""},
		"cron->ok-svc":  {0, false, ""},
	} {
		src, dst, _ := strings.Cut(key, "->")
		got := b.sampleEdge(img, src, dst)
		if got.slowSides != w.slow {
			t.Errorf("screenshot: %s slow mark %v (slow pixels on %d sides, profile %v), want %v", key, got.slowSides, got.sides, got.profile, w.slow)
		}
		if got.err != (w.errorLevel == 2) {
			t.Errorf("screenshot: %s error colour %v (centre %v), want %v", key, got.err, got.centre, w.errorLevel == 2)
		}
	}
	// The tooltip of the slow edge says why.
	p := eval[point](b, `__flowscope.edgePoint('api', 'slow-svc', 0.5)`)
	b.do(chromedp.MouseEvent("mouseMoved", p.X, p.Y))
	b.wait(`(e => !e.hidden && e.querySelector('[data-testid=tip-slow]'))(document.querySelector('[data-testid=map-tooltip]'))`, 5*time.Second, "the slow edge's tooltip")
	if tip := eval[string](b, `document.querySelector('[data-testid=tip-slow]').innerText`); !strings.Contains(tip, "the hour before") {
		t.Errorf("tooltip slow line %q", tip)
	}
	b.do(chromedp.MouseEvent("mouseMoved", 2, 2))
}

// shotImage writes a screenshot and decodes it.
func (b *tab) shotImage(name string) image.Image {
	b.t.Helper()
	data, err := os.ReadFile(b.shot(name))
	if err != nil {
		b.t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		b.t.Fatal(err)
	}
	return img
}

type edgeSample struct {
	slowSides bool
	sides     int
	err       bool
	centre    string
	profile   []string
}

// sampleEdge reads the pixels across an edge at its middle: the colour
// classes from -16 to +16 px perpendicular to it.
func (b *tab) sampleEdge(img image.Image, src, dst string) edgeSample {
	b.t.Helper()
	p := eval[point](b, fmt.Sprintf(`__flowscope.edgePoint(%s, %s, 0.5)`, js(src), js(dst)))
	q := eval[point](b, fmt.Sprintf(`__flowscope.edgePoint(%s, %s, 0.6)`, js(src), js(dst)))
	dx, dy := q.X-p.X, q.Y-p.Y
	l := math.Hypot(dx, dy)
	nx, ny := -dy/l, dx/l
	var out edgeSample
	var left, right bool
	for o := -16; o <= 16; o++ {
		c := hueClass(img, p.X+nx*float64(o), p.Y+ny*float64(o))
		out.profile = append(out.profile, c)
		if c == "slow" && o < -1 {
			left = true
		}
		if c == "slow" && o > 1 {
			right = true
		}
		if o >= -1 && o <= 1 && c == "err" {
			out.err = true
		}
		if o == 0 {
			out.centre = c
		}
	}
	if left {
		out.sides++
	}
	if right {
		out.sides++
	}
	out.slowSides = left && right
	return out
}

// hueClass names the map colour of a pixel by its hue: slow (amber,
// #d9a400), err (#e5484d), warn (#f08c3a), ok (blue) or "" (background,
// text, anything unsaturated).
func hueClass(img image.Image, x, y float64) string {
	r16, g16, b16, _ := img.At(int(math.Round(x)), int(math.Round(y))).RGBA()
	r, g, bl := float64(r16>>8), float64(g16>>8), float64(b16>>8)
	mx, mn := max(r, g, bl), min(r, g, bl)
	if mx < 90 || (mx-mn)/mx < 0.5 {
		return ""
	}
	var h float64
	switch mx {
	case r:
		h = math.Mod((g-bl)/(mx-mn), 6) * 60
	case g:
		h = ((bl-r)/(mx-mn) + 2) * 60
	default:
		h = ((r-g)/(mx-mn) + 4) * 60
	}
	if h < 0 {
		h += 360
	}
	switch {
	case h >= 38 && h <= 56:
		return "slow"
	case h >= 18 && h < 36:
		return "warn"
	case h >= 340 || h < 10:
		return "err"
	case h >= 190 && h <= 250:
		return "ok"
	}
	return "?"
}

// With a threshold, slowness is judged against it alone, also for the
// edge without a baseline.
func testHealthThreshold(b *tab) {
	t := b.t
	for _, c := range []struct {
		ms    string
		wants map[string]want
	}{
		{"10", map[string]want{"api->both-svc": {2, true, "threshold"}, "api->slow-svc": {0, true, "threshold"}, "api->fail-svc": {2, true, "threshold"}, "cron->ok-svc": {0, true, "threshold"}, "api->new-svc": {0, true, "threshold"}}},
		{"60", map[string]want{"api->both-svc": {2, true, "threshold"}, "api->slow-svc": {0, true, "threshold"}, "api->fail-svc": {2, false, ""}, "cron->ok-svc": {0, false, ""}, "api->new-svc": {0, true, "threshold"}}},
		{"500", map[string]want{"api->both-svc": {2, false, ""}, "api->slow-svc": {0, false, ""}, "api->fail-svc": {2, false, ""}, "cron->ok-svc": {0, false, ""}, "api->new-svc": {0, false, ""}}},
	} {
		b.openMapReady("map?p99="+c.ms, 5)
		checkMarks(t, b.healthState(), c.wants)
		if rule := eval[string](b, `document.querySelector('[data-testid=legend-slow-rule]').textContent`); rule != "p99 > "+c.ms+" ms" {
			t.Errorf("p99=%s: legend rule %q", c.ms, rule)
		}
		if c.ms == "60" {
			b.shot("map-health-threshold")
		}
	}
}

// Unhealthy only hides the healthy edge and its nodes, which have no other
// call; the slow edge without a baseline is healthy too without a
// threshold.
func testHealthUnhealthy(b *tab) {
	t := b.t
	b.openMapReady("map?unhealthy=1", 5)
	b.wait(`__flowscope.mapState().visibleEdges === 3`, 5*time.Second, "three unhealthy edges")
	st := b.healthState()
	slices.Sort(st.VisibleNodeIDs)
	slices.Sort(st.VisibleEdgeKeys)
	if w := []string{"api", "both-svc", "fail-svc", "slow-svc"}; !slices.Equal(st.VisibleNodeIDs, w) {
		t.Errorf("visible nodes %v, want %v", st.VisibleNodeIDs, w)
	}
	if w := []string{"api->both-svc", "api->fail-svc", "api->slow-svc"}; !slices.Equal(st.VisibleEdgeKeys, w) {
		t.Errorf("visible edges %v, want %v", st.VisibleEdgeKeys, w)
	}
	if !eval[bool](b, `document.querySelector('[data-testid=unhealthy-only]').checked`) {
		t.Error("the unhealthy-only toggle is not checked")
	}
	// The keyboard list follows the filter.
	items := eval[[]string](b, `[...document.querySelectorAll('[data-testid=keylist-node]')].map(e => e.dataset.node)`)
	if !slices.Equal(items, []string{"api", "both-svc", "fail-svc", "slow-svc"}) {
		t.Errorf("keyboard list nodes %v", items)
	}
	// The view is framed on what is left.
	b.wait(`!__flowscope.mapState().layoutRunning`, 10*time.Second, "the layout to settle")
	canvas := eval[rect](b, `(r => ({left: r.left, top: r.top, right: r.right, bottom: r.bottom}))(document.querySelector('[data-testid=service-map] canvas').getBoundingClientRect())`)
	for _, id := range st.VisibleNodeIDs {
		nb := eval[rect](b, `__flowscope.nodeBox(`+js(id)+`)`)
		if nb.Left < canvas.Left || nb.Right > canvas.Right || nb.Top < canvas.Top || nb.Bottom > canvas.Bottom {
			t.Errorf("node %s at %+v, outside the canvas %+v", id, nb, canvas)
		}
	}
	b.shot("map-health-unhealthy")
	// The toggle turns it off again.
	b.do(chromedp.Click(`[data-testid=unhealthy-only]`))
	b.wait(`__flowscope.mapState().visibleEdges === 5 && !__flowscope.route().params.unhealthy`, 5*time.Second, "every edge back")
}

// Labels: rate, error % and p99 on each visible edge, none overlapping.
func testHealthLabels(b *tab) {
	t := b.t
	b.openMapReady("map", 5)
	if n := len(b.healthState().EdgeLabels); n != 0 {
		t.Errorf("%d edge labels without the toggle", n)
	}
	b.do(chromedp.Click(`[data-testid=edge-labels]`))
	b.wait(`__flowscope.route().params.labels === 'rate,errors,p99' && __flowscope.mapState().edgeLabels.length > 0`, 5*time.Second, "the labels")
	time.Sleep(300 * time.Millisecond)
	st := b.healthState()
	got := map[string]string{}
	for i, l := range st.EdgeLabels {
		got[l.Key] = l.Text
		for _, o := range st.EdgeLabels[:i] {
			if l.Left < o.Right && o.Left < l.Right && l.Top < o.Bottom && o.Top < l.Bottom {
				t.Errorf("labels of %s and %s overlap", l.Key, o.Key)
			}
		}
	}
	// A label is left out only where it would collide: on this small map
	// most edges have one.
	if len(got) < 3 {
		t.Errorf("%d of %d edges labelled: %v", len(got), len(st.VisibleEdgeKeys), got)
	}
	for key, txt := range got {
		if !slices.Contains(st.VisibleEdgeKeys, key) {
			t.Errorf("a label on %s, which is not visible", key)
		}
		if !strings.Contains(txt, "/s") || !strings.Contains(txt, "% err") || !strings.Contains(txt, "p99 ") {
			t.Errorf("label of %s %q, want rate, error %% and p99", key, txt)
		}
		if want := map[bool]string{true: "20 % err", false: "0 % err"}[strings.Contains(key, "fail-svc") || strings.Contains(key, "both-svc")]; !strings.Contains(txt, want) {
			t.Errorf("label of %s %q, want %q", key, txt, want)
		}
	}
	t.Logf("labels: %v", got)
	b.shot("map-health-labels")
	// Only some parts, from the URL.
	b.openMapReady("map?labels=p99", 5)
	b.wait(`__flowscope.mapState().edgeLabels.length > 0`, 5*time.Second, "the p99 labels")
	for _, l := range b.healthState().EdgeLabels {
		if !strings.HasPrefix(l.Text, "p99 ") || strings.Contains(l.Text, "/s") {
			t.Errorf("labels=p99: label %q", l.Text)
		}
	}
}

// The baseline is one request, not one per refresh.
func testBaselineCached(b *tab) {
	t := b.t
	b.openMapReady("map", 5)
	u0 := eval[int](b, `__flowscope.mapState().updates`)
	b.wait(fmt.Sprintf(`__flowscope.mapState().updates >= %d`, u0+3), 15*time.Second, "three more refreshes")
	reqs := eval[[][]float64](b, `performance.getEntriesByType('resource').filter(e => e.name.includes('/api/v1/flowgraph')).map(e => {
		const u = new URL(e.name);
		return [Number(u.searchParams.get('start')), Number(u.searchParams.get('end'))];
	})`)
	var base, cur int
	for _, r := range reqs {
		if r[1]-r[0] == 3600e3 {
			base++
		} else {
			cur++
		}
	}
	t.Logf("flowgraph requests: %d for the range, %d for the baseline", cur, base)
	if base != 1 || cur < 4 {
		t.Errorf("%d baseline requests over %d refreshes, want 1", base, cur)
	}
}

// The edge's side panel links to its traces: one click lands on the
// traces view with the edge, the range and (for failing) status=error.
func testEdgeTraces(b *tab, s *server, hs *healthSeed) {
	t := b.t
	supported := edgeSearchSupported(s)
	t.Logf("edge trace search in the API: %v", supported)
	for _, c := range []struct {
		link, status string
		ids          []string
	}{
		{"side-edge-traces", "", hs.traces["api->both-svc"]},
		{"side-edge-failing", "error", hs.failures["api->both-svc"]},
	} {
		b.open("map?range=1h&operation=" + url.QueryEscape("GET both-svc") + "&source=api&target=both-svc")
		b.wait(`document.querySelector('[data-testid=`+c.link+`]')`, 10*time.Second, "the edge's trace link")
		b.do(chromedp.Click(`[data-testid=` + c.link + `]`))
		b.wait(`__flowscope.route().name === 'traces'`, 5*time.Second, "the traces view")
		params := eval[map[string]string](b, `__flowscope.route().params`)
		for k, v := range map[string]string{"source": "api", "target": "both-svc", "range": "1h", "operation": "GET both-svc", "status": c.status} {
			if params[k] != v {
				t.Errorf("%s: route param %s = %q, want %q (all %v)", c.link, k, params[k], v, params)
			}
		}
		if !supported {
			continue
		}
		b.wait(`document.querySelectorAll('[data-testid=trace-row]').length > 0 || document.querySelector('[data-testid=msg-empty], [data-testid=msg-error]')`, 10*time.Second, "the edge's traces")
		rows := eval[[]string](b, `[...document.querySelectorAll('[data-testid=trace-row]')].map(e => e.dataset.traceId)`)
		if len(rows) == 0 {
			t.Errorf("%s: no trace listed; page: %s", c.link, b.text())
		}
		for _, id := range rows {
			if !slices.Contains(c.ids, id) {
				t.Errorf("%s: trace %s listed is not one of the edge's seeded traces", c.link, id)
			}
		}
		t.Logf("%s: %d traces listed, all of the edge's", c.link, len(rows))
	}
	// At the zone level no node is a service: no link.
	b.open("map?level=zone&source=eu-west-1a&target=eu-west-1a")
	b.wait(`document.querySelector('[data-testid=side-edge-traces-none]')`, 10*time.Second, "no trace link at the zone level")
}

// edgeSearchSupported reports whether /traces takes source and target.
func edgeSearchSupported(s *server) bool {
	resp, err := http.Get(s.base + "/api/v1/traces?source=api&target=both-svc&limit=1")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// Keyboard: Tab reaches the list; Enter selects a node, then an edge;
// Escape comes back to the list; refreshes keep the focus.
func testMapKeyboard(b *tab) {
	t := b.t
	b.openMapReady("map", 5)
	b.wait(`document.querySelectorAll('[data-testid=keylist-node]').length === 7`, 5*time.Second, "the keyboard list")
	active := `(document.activeElement && document.activeElement.dataset.key || '')`
	presses := 0
	for ; presses < 150; presses++ {
		if k := eval[string](b, active); strings.HasPrefix(k, "n:") {
			break
		}
		b.do(chromedp.KeyEvent(kb.Tab))
	}
	if k := eval[string](b, active); k != "n:api" {
		t.Fatalf("after %d Tabs the focus is on %q, want the list's first node n:api", presses, k)
	}
	t.Logf("Tab reached the node list in %d presses", presses)
	b.shot("map-keyboard-list")
	// Refreshes do not take the focus away.
	u0 := eval[int](b, `__flowscope.mapState().updates`)
	b.wait(fmt.Sprintf(`__flowscope.mapState().updates >= %d`, u0+2), 10*time.Second, "two refreshes")
	if k := eval[string](b, active); k != "n:api" {
		t.Errorf("after refreshes the focus is on %q", k)
	}
	// Nor does a filter that keeps the item.
	eval[bool](b, `(location.hash = '#/map?unhealthy=1', true)`)
	b.wait(`document.querySelectorAll('[data-testid=keylist-node]').length === 4`, 5*time.Second, "the filtered list")
	if k := eval[string](b, active); k != "n:api" {
		t.Errorf("after filtering the focus is on %q", k)
	}
	eval[bool](b, `(location.hash = '#/map', true)`)
	b.wait(`document.querySelectorAll('[data-testid=keylist-node]').length === 7`, 5*time.Second, "the whole list")

	for _, c := range []struct {
		key, title string
		sel        string
	}{
		{"n:api", "api", `s.selected && s.selected.type === 'node' && s.selected.id === 'api'`},
		{"e:api->both-svc", "api → both-svc", `s.selected && s.selected.type === 'edge' && s.selected.source === 'api' && s.selected.target === 'both-svc'`},
	} {
		if k := eval[string](b, active); k != c.key {
			// The edge follows its node: one more Tab.
			b.do(chromedp.KeyEvent(kb.Tab))
		}
		if k := eval[string](b, active); k != c.key {
			t.Fatalf("focus on %q, want %q", k, c.key)
		}
		b.do(chromedp.KeyEvent(kb.Enter))
		b.wait(`(s => `+c.sel+`)(__flowscope.mapState()) && (e => e && e.textContent === `+js(c.title)+`)(document.querySelector('[data-testid=side-title]'))`, 5*time.Second, "the side panel of "+c.title)
		if c.key == "e:api->both-svc" {
			if n := eval[int](b, `document.querySelectorAll('[data-testid=side-edge-traces]').length`); n != 1 {
				t.Errorf("the edge's side panel has %d trace links", n)
			}
		}
		b.do(chromedp.KeyEvent(kb.Escape))
		b.wait(`!__flowscope.mapState().selected && `+active+` === `+js(c.key), 5*time.Second, "Escape back to "+c.key)
	}
	// Space selects too.
	b.do(chromedp.KeyEvent(" "))
	b.wait(`(s => s.selected && s.selected.type === 'edge')(__flowscope.mapState())`, 5*time.Second, "Space to select the edge")
	b.do(chromedp.KeyEvent(kb.Escape))
}

// Range 1m: the map asks for 60 s, the baseline for the hour before; the
// other views take the range too.
func testRange1m(b *tab) {
	t := b.t
	b.open("map?range=1m")
	b.wait(`__flowscope.mapState() && __flowscope.mapState().nodes.length > 0 && document.querySelector('[data-testid=view-map]').dataset.baseline`, 15*time.Second, "the map over 1m")
	if v := eval[string](b, `document.querySelector('[data-testid=range-select]').value`); v != "1m" {
		t.Errorf("range select %q", v)
	}
	reqs := eval[[][]float64](b, `performance.getEntriesByType('resource').filter(e => e.name.includes('/api/v1/flowgraph')).map(e => {
		const u = new URL(e.name);
		return [Number(u.searchParams.get('start')), Number(u.searchParams.get('end'))];
	})`)
	var cur, base int
	for _, r := range reqs {
		switch d := r[1] - r[0]; {
		case d >= 60e3 && d <= 60e3+1:
			cur++
		case d == 3600e3:
			base++
		default:
			t.Errorf("a flowgraph request over %v ms", d)
		}
	}
	if cur == 0 || base != 1 {
		t.Errorf("%d requests over 60 s, %d baseline requests", cur, base)
	}
	for _, route := range []string{"latency?service=slow-svc&range=1m", "traces?service=api&range=1m", "dashboard/service-overview?var-service=slow-svc&range=1m", "metrics?range=1m"} {
		b.open(route)
		time.Sleep(1500 * time.Millisecond)
		if n := eval[int](b, `document.querySelectorAll('[data-testid=msg-error]').length`); n != 0 {
			t.Errorf("%s: %d errors: %s", route, n, eval[string](b, `[...document.querySelectorAll('[data-testid=msg-error]')].map(e => e.textContent).join(' | ')`))
		}
		if v := eval[string](b, `(e => e ? e.value : '')(document.querySelector('[data-testid=range-select]'))`); v != "1m" {
			t.Errorf("%s: range select %q", route, v)
		}
	}
}

// TestMapHealthAlerts: a firing alert on a latency signal gives the slow
// mark, on an error signal the error colour, on a healthy edge and node.
func TestMapHealthAlerts(t *testing.T) {
	browser(t)
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	writeFile(t, rules, `rules:
  - alert: EdgeP99
    select: {source: cron, target: ok-svc}
    signal: p99
    above: 1ms
    window: 5m
  - alert: NodeErrors
    select: {service: slow-svc}
    signal: error_rate
    below: 1
    window: 5m
`)
	s := startCollector(t, withRules(rules))
	seedHealth(t, s, nil)
	waitAPI(t, 20*time.Second, "both alerts to fire", func() bool {
		var r struct{ Alerts []apiAlert }
		s.getJSON(t, "/api/v1/alerts?state=firing", &r)
		return len(r.Alerts) == 2
	})
	b := newTab(t, s.base)
	b.openMapReady("map", 5)
	b.wait(`(s => s.alerts.edges['cron->ok-svc'] === 'firing' && s.alerts.nodes['slow-svc'] === 'firing')(__flowscope.mapState())`, 10*time.Second, "the alerts on the map")
	st := b.healthState()
	checkMarks(t, st, map[string]want{"cron->ok-svc": {0, true, "alert"}})
	if n := st.Health.Nodes["slow-svc"]; n.ErrorLevel != 2 || !n.Slow || n.SlowReason != "baseline" {
		t.Errorf("node slow-svc %+v, want the error colour (alert) and still slow against the baseline", n)
	}
	b.open("map?unhealthy=1")
	b.wait(`(s => s && s.visibleEdgeKeys.includes('cron->ok-svc'))(__flowscope.mapState())`, 10*time.Second, "the alerted edge to count as unhealthy")
	b.shot("map-health-alerts")
	b.checkClean()
}

// TestMapHealthXSS: service names with markup in the keyboard list, the
// edge labels, the legend, the side panel's links and the tooltip.
func TestMapHealthXSS(t *testing.T) {
	browser(t)
	s := startCollector(t)
	names := map[string]string{"api": "api " + xssScript, "both-svc": xssImg, "cron": xssSVG, "ok-svc": xssQuote}
	seedHealth(t, s, names)
	b := newTab(t, s.base)
	b.openMapReady("map?labels=rate,errors,p99", 5)
	b.wait(`__flowscope.mapState().edgeLabels.length > 0`, 5*time.Second, "the labels")
	list := eval[[]string](b, `[...document.querySelectorAll('[data-testid=keylist] .keylist-name, [data-testid=map-keylist] .keylist-name')].map(e => e.textContent)`)
	for _, n := range names {
		if !slices.Contains(list, n) {
			t.Errorf("the keyboard list does not show %q literally: %q", n, list)
		}
	}
	if c := eval[string](b, `document.querySelector('[data-testid=legend-counts]').textContent`); !strings.Contains(c, "slow") {
		t.Errorf("legend counts %q", c)
	}
	// The edge, by keyboard: its panel and links.
	eval[bool](b, `([...document.querySelectorAll('[data-testid=keylist-edge]')].find(e => e.dataset.target === `+js(xssImg)+`).focus(), true)`)
	b.do(chromedp.KeyEvent(kb.Enter))
	b.wait(`document.querySelector('[data-testid=side-edge-traces]')`, 5*time.Second, "the edge's panel")
	href := eval[string](b, `document.querySelector('[data-testid=side-edge-traces]').getAttribute('href')`)
	u, err := url.Parse(strings.TrimPrefix(href, "#/"))
	if err != nil || u.Query().Get("source") != names["api"] || u.Query().Get("target") != xssImg {
		t.Errorf("traces link %q", href)
	}
	if title := eval[string](b, `document.querySelector('[data-testid=side-title]').textContent`); title != names["api"]+" → "+xssImg {
		t.Errorf("side title %q", title)
	}
	p := eval[point](b, `__flowscope.edgePoint(`+js(names["api"])+`, `+js(xssImg)+`, 0.5)`)
	b.do(chromedp.MouseEvent("mouseMoved", p.X, p.Y))
	b.wait(`!document.querySelector('[data-testid=map-tooltip]').hidden`, 5*time.Second, "the tooltip")
	assertNoInjection(b)
	b.shot("map-health-xss")
	b.checkClean()
}
