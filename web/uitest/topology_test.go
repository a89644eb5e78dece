package uitest

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/internal/otlptest"
)

// Issue 15, item 4: big topologies that stay readable — boxes per
// namespace and service, collapsing, a fresh layout of what a filter
// leaves, labels that never overlap.

// topoInstance is one seeded instance: its service and namespace.
type topoInstance struct{ ns, svc, id string }

// topoSeed is what seedTopology sent: instance IDs as the flow graph names
// them (namespace/instance) and the calls per instance edge.
type topoSeed struct {
	instances []topoInstance
	edges     map[string]int // "source->target" (flow-graph IDs) → calls
}

// topoSpan is a span with the resource of its instance.
type topoSpan struct {
	inst topoInstance
	span span
}

// seedTopology sends, through OTLP/HTTP, namespaces × services services of
// about instances instances in all (service.namespace,
// service.instance.id), with about edges instance-level calls: each
// service calls two to three others (within its namespace and across),
// and each such service call is spread over pairs of their instances, 1 to
// 5 calls per pair so that rates differ. Spans are batched by resource.
func seedTopology(t *testing.T, s *server, namespaces []string, perNS, instances, edges int) *topoSeed {
	t.Helper()
	type svc struct {
		ns, name string
		insts    []topoInstance
	}
	var svcs []*svc
	for _, ns := range namespaces {
		for j := range perNS {
			svcs = append(svcs, &svc{ns: ns, name: fmt.Sprintf("%s-svc%d", strings.TrimPrefix(ns, "ns-"), j)})
		}
	}
	// Instances: as even as possible.
	for i := range instances {
		sv := svcs[i%len(svcs)]
		id := fmt.Sprintf("%s-i%d", sv.name, len(sv.insts))
		sv.insts = append(sv.insts, topoInstance{ns: sv.ns, svc: sv.name, id: id})
	}
	x := uint64(7)
	rnd := func(n int) int {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return int(x % uint64(n))
	}
	// Service calls: svc k calls k+1 (a chain per namespace), and one or
	// two services further on, anywhere.
	type pair struct{ a, b int }
	var scalls []pair
	seen := map[pair]bool{}
	addS := func(a, b int) {
		if a == b || seen[pair{a, b}] || seen[pair{b, a}] {
			return
		}
		seen[pair{a, b}] = true
		scalls = append(scalls, pair{a, b})
	}
	for k := range svcs {
		if (k+1)%perNS != 0 {
			addS(k, k+1)
		}
		addS(k, (k+1+rnd(len(svcs)-1))%len(svcs))
		if k%2 == 0 {
			addS(k, (k+3+rnd(len(svcs)-3))%len(svcs))
		}
	}
	fid := func(in topoInstance) string { return in.ns + "/" + in.id }
	sd := &topoSeed{edges: map[string]int{}}
	for _, sv := range svcs {
		sd.instances = append(sd.instances, sv.insts...)
	}
	// Instance pairs, round robin over the service calls, until edges.
	type ipair struct{ a, b topoInstance }
	var ipairs []ipair
	iseen := map[string]bool{}
	for round := 0; len(ipairs) < edges && round < 200; round++ {
		for _, p := range scalls {
			if len(ipairs) >= edges {
				break
			}
			A, B := svcs[p.a], svcs[p.b]
			a, b := A.insts[rnd(len(A.insts))], B.insts[rnd(len(B.insts))]
			k := fid(a) + "->" + fid(b)
			if iseen[k] {
				continue
			}
			iseen[k] = true
			ipairs = append(ipairs, ipair{a, b})
		}
	}
	start := time.Now().Add(-80 * time.Second)
	var spans []topoSpan
	for i, p := range ipairs {
		n := 1 + i%5
		for c := range n {
			tid, ids := newIDs(2)
			st := start.Add(time.Duration((i*7+c*13)%70000) * time.Millisecond)
			d := time.Duration(2+(i+c)%30) * time.Millisecond
			spans = append(spans,
				topoSpan{p.a, span{traceID: tid, spanID: ids[0], name: "call " + p.b.svc, kind: tracepb.Span_SPAN_KIND_CLIENT, start: st, dur: d}},
				topoSpan{p.b, span{traceID: tid, spanID: ids[1], parentID: ids[0], name: "handle", kind: tracepb.Span_SPAN_KIND_SERVER, start: st.Add(d / 20), dur: d * 9 / 10, err: (i+c)%41 == 0}})
		}
		sd.edges[fid(p.a)+"->"+fid(p.b)] = n
	}
	postTopology(t, s, spans)
	return sd
}

// postTopology sends spans in requests of at most 4,000 spans, one
// resource per instance.
func postTopology(t *testing.T, s *server, spans []topoSpan) {
	t.Helper()
	for i := 0; i < len(spans); i += 4000 {
		req := &coltracepb.ExportTraceServiceRequest{}
		byInst := map[topoInstance]*tracepb.ScopeSpans{}
		for _, ts := range spans[i:min(i+4000, len(spans))] {
			ss := byInst[ts.inst]
			if ss == nil {
				ss = &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: "uitest"}}
				byInst[ts.inst] = ss
				req.ResourceSpans = append(req.ResourceSpans, &tracepb.ResourceSpans{
					Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
						otlptest.Str("service.name", ts.inst.svc),
						otlptest.Str("service.namespace", ts.inst.ns),
						otlptest.Str("service.instance.id", ts.inst.id),
					}},
					ScopeSpans: []*tracepb.ScopeSpans{ss},
				})
			}
			sp := ts.span
			st := uint64(sp.start.UnixNano())
			p := &tracepb.Span{TraceId: sp.traceID, SpanId: sp.spanID, ParentSpanId: sp.parentID, Name: sp.name, Kind: sp.kind,
				StartTimeUnixNano: st, EndTimeUnixNano: st + uint64(sp.dur)}
			if sp.err {
				p.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
			}
			ss.Spans = append(ss.Spans, p)
		}
		b, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		post(t, "http://"+s.addrs.OTLPHTTP+"/v1/traces", "application/x-protobuf", s.ingestToken, b)
	}
}

// topoGraph is the flow graph's JSON with what the topology tests read.
type topoGraph struct {
	Nodes []struct {
		ID          string  `json:"id"`
		Namespace   string  `json:"namespace"`
		Service     string  `json:"service"`
		RequestRate float64 `json:"requestRate"`
	} `json:"nodes"`
	Edges []struct {
		Source string  `json:"source"`
		Target string  `json:"target"`
		Rate   float64 `json:"rate"`
		Calls  float64 `json:"calls"`
	} `json:"edges"`
}

// topoBox is a box of mapState().topology.groups.
type topoBox struct {
	ID     string  `json:"id"`
	Kind   string  `json:"kind"`
	Name   string  `json:"name"`
	Full   string  `json:"full"`
	Parent string  `json:"parent"`
	X0     float64 `json:"x0"`
	Y0     float64 `json:"y0"`
	X1     float64 `json:"x1"`
	Y1     float64 `json:"y1"`
	Head   float64 `json:"head"`
	Screen rect    `json:"screen"`
}

type topoLabel struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	Text string `json:"text"`
	Full string `json:"full"`
	Pos  string `json:"pos"`
	rect
}

type topoState struct {
	Grouped      bool              `json:"grouped"`
	Filtered     bool              `json:"filtered"`
	Groups       []topoBox         `json:"groups"`
	NodeGroups   map[string]string `json:"nodeGroups"`
	Collapsed    map[string]string `json:"collapsed"`
	Labels       []topoLabel       `json:"labels"`
	HiddenLabels int               `json:"hiddenLabels"`
	LabelMs      float64           `json:"labelMs"`
	Relayouts    int               `json:"relayouts"`
	LastRelayout *struct {
		At      float64 `json:"at"`
		Ms      float64 `json:"ms"`
		Nodes   int     `json:"nodes"`
		DrawnAt float64 `json:"drawnAt"`
	} `json:"lastRelayout"`
	LastGlobalLayoutMs float64  `json:"lastGlobalLayoutMs"`
	SelDrawnAt         float64  `json:"selDrawnAt"`
	VisibleNodeIDs     []string `json:"visibleNodeIds"`
	VisibleEdgeKeys    []string `json:"visibleEdgeKeys"`
}

func (b *tab) topo() topoState {
	b.t.Helper()
	return eval[topoState](b, `__flowscope.mapState().topology`)
}

func (b *tab) positions() map[string][2]float64 {
	b.t.Helper()
	return eval[map[string][2]float64](b, `__flowscope.positions()`)
}

// checkLabels fails on two label boxes (node labels and box names) that
// overlap, or one outside the canvas.
func checkLabels(t *testing.T, what string, st topoState, canvas rect) {
	t.Helper()
	w, h := canvas.Right-canvas.Left, canvas.Bottom-canvas.Top
	bad := 0
	for i, a := range st.Labels {
		if a.Left < -0.5 || a.Top < -0.5 || a.Right > w+0.5 || a.Bottom > h+0.5 {
			t.Errorf("%s: label %q at %v is outside the canvas (%v × %v)", what, a.Text, a.rect, w, h)
		}
		for _, c := range st.Labels[i+1:] {
			if a.rect.overlaps(c.rect) {
				if bad++; bad <= 5 {
					t.Errorf("%s: labels %q %v and %q %v overlap", what, a.Text, a.rect, c.Text, c.rect)
				}
			}
		}
		// A label is its node's ID, without the namespace in the
		// namespace's box, or shortened with ….
		if a.Kind == "node" && a.Text != a.Full && !strings.Contains(a.Text, "…") && !strings.HasSuffix(a.Full, "/"+a.Text) {
			t.Errorf("%s: label %q of %q is shortened without …", what, a.Text, a.Full)
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d overlapping label pairs in all", what, bad)
	}
}

func (b *tab) canvasRect() rect {
	return eval[rect](b, `(r => ({left: r.left, top: r.top, right: r.right, bottom: r.bottom}))(document.querySelector('[data-testid=service-map] canvas').getBoundingClientRect())`)
}

// bbox is the bounding box of the positions of ids: its width and height.
func bbox(pos map[string][2]float64, ids []string) (w, h float64) {
	x0, y0, x1, y1 := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, id := range ids {
		p, ok := pos[id]
		if !ok {
			continue
		}
		x0, y0, x1, y1 = min(x0, p[0]), min(y0, p[1]), max(x1, p[0]), max(y1, p[1])
	}
	return x1 - x0, y1 - y0
}

const (
	topoNamespaces = 4
	topoServices   = 7 // per namespace: 28 services
	topoInstances  = 277
	topoEdges      = 1620
)

// TestTopology seeds 277 instances of 28 services in 4 namespaces with
// 1,620 instance-level calls, and checks the boxes, collapsing, the
// layout of what a filter leaves, label placement and the two-click path.
func TestTopology(t *testing.T) {
	browser(t)
	s := startCollector(t)
	seedStart := time.Now()
	sd := seedTopology(t, s, []string{"ns-a", "ns-b", "ns-c", "ns-d"}, topoServices, topoInstances, topoEdges)
	var g topoGraph
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.getJSON(t, "/api/v1/flowgraph?level=instance", &g)
		if len(g.Nodes) == topoInstances && len(g.Edges) == len(sd.edges) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance graph has %d nodes and %d edges, want %d and %d", len(g.Nodes), len(g.Edges), topoInstances, len(sd.edges))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(sd.edges) != topoEdges {
		t.Fatalf("seeded %d instance edges, want %d", len(sd.edges), topoEdges)
	}
	for _, n := range g.Nodes {
		if n.Service == "" || n.Namespace == "" {
			t.Fatalf("instance %s has service %q, namespace %q: the API lacks the node's service", n.ID, n.Service, n.Namespace)
		}
	}
	t.Logf("seeded %d instances, %d instance edges in %v", len(g.Nodes), len(g.Edges), time.Since(seedStart).Round(time.Millisecond))
	b := newTab(t, s.base)
	perf := map[string]any{"instances": len(g.Nodes), "instanceEdges": len(g.Edges)}
	t.Run("Grouped", func(t *testing.T) { testTopoGrouped(b.with(t), g, perf) })
	t.Run("Collapse", func(t *testing.T) { testTopoCollapse(b.with(t), s) })
	t.Run("FocusRelayout", func(t *testing.T) { testTopoFocus(b.with(t)) })
	t.Run("SearchFilter", func(t *testing.T) { testTopoSearch(b.with(t)) })
	t.Run("MinRate", func(t *testing.T) { testTopoMinRate(b.with(t), g) })
	t.Run("LabelsService", func(t *testing.T) { testTopoServiceLabels(b.with(t), s) })
	t.Run("TwoClickPath", func(t *testing.T) { testTopoTwoClicks(b.with(t), perf) })
	data, _ := json.MarshalIndent(perf, "", "  ")
	if err := os.WriteFile(filepath.Join(screenshotDir(t), "topology-perf.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	b.checkClean()
}

// openInstances opens the instance map and waits for it to settle.
func (b *tab) openTopo(route string, nodes int) {
	b.t.Helper()
	b.open(route)
	b.wait(fmt.Sprintf(`(s => s && s.nodes.length === %d && !s.layoutRunning && s.topology)(__flowscope.mapState())`, nodes), 20*time.Second, "the map of "+route)
	// One more frame, so that the labels are placed for the final layout.
	eval[bool](b, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
}

// Every instance is drawn inside its service's box, every service box
// inside its namespace's; sibling boxes do not overlap; labels neither.
func testTopoGrouped(b *tab, g topoGraph, perf map[string]any) {
	t := b.t
	b.openTopo("map?level=instance", topoInstances)
	st := b.topo()
	if !st.Grouped {
		t.Fatal("the instance map is not grouped by default")
	}
	boxes := map[string]topoBox{}
	for _, bx := range st.Groups {
		boxes[bx.ID] = bx
	}
	if n := len(st.Groups); n != topoNamespaces+topoNamespaces*topoServices {
		t.Errorf("%d boxes, want %d namespaces and %d services", n, topoNamespaces, topoNamespaces*topoServices)
	}
	pos := b.positions()
	inside := func(p [2]float64, bx topoBox) bool {
		return p[0] > bx.X0 && p[0] < bx.X1 && p[1] > bx.Y0+bx.Head && p[1] < bx.Y1
	}
	for _, n := range g.Nodes {
		want := "svc:" + n.Service
		if got := st.NodeGroups[n.ID]; got != want {
			t.Errorf("node %s is in box %q, want %q", n.ID, got, want)
			continue
		}
		bx := boxes[want]
		if !inside(pos[n.ID], bx) {
			t.Errorf("node %s at %v is outside its box %s [%v %v %v %v]", n.ID, pos[n.ID], bx.ID, bx.X0, bx.Y0, bx.X1, bx.Y1)
		}
		if bx.Parent != "ns:"+n.Namespace {
			t.Errorf("box %s is in %q, want ns:%s", bx.ID, bx.Parent, n.Namespace)
		}
	}
	for _, a := range st.Groups {
		if a.Parent != "" {
			p, ok := boxes[a.Parent]
			if !ok || a.X0 < p.X0 || a.X1 > p.X1 || a.Y0 < p.Y0+p.Head || a.Y1 > p.Y1 {
				t.Errorf("box %s [%v %v %v %v] is not inside its parent %s", a.ID, a.X0, a.Y0, a.X1, a.Y1, a.Parent)
			}
		}
		for _, c := range st.Groups {
			if a.ID < c.ID && a.Parent == c.Parent && a.X0 < c.X1 && c.X0 < a.X1 && a.Y0 < c.Y1 && c.Y0 < a.Y1 {
				t.Errorf("sibling boxes %s and %s overlap", a.ID, c.ID)
			}
		}
	}
	nsLabels := 0
	for _, l := range st.Labels {
		if l.Kind == "box" && strings.HasPrefix(l.ID, "ns:") {
			nsLabels++
		}
	}
	if nsLabels != topoNamespaces {
		t.Errorf("%d namespace names drawn, want %d", nsLabels, topoNamespaces)
	}
	checkLabels(t, "instances, grouped", st, b.canvasRect())
	t.Logf("grouped instance map: %d boxes, %d labels placed, %d hidden (label pass %.2f ms), global layout %.1f ms",
		len(st.Groups), len(st.Labels), st.HiddenLabels, st.LabelMs, st.LastGlobalLayoutMs)
	b.shot("topology-instances-grouped")

	// Frame times with the boxes and without (group=0), the map refreshing
	// live with particles.
	framesOn := eval[frameStats](b, `__flowscope.sampleFrames(4000)`)
	b.openTopo("map?level=instance&group=0", topoInstances)
	if b.topo().Grouped {
		t.Error("group=0 still draws boxes")
	}
	framesOff := eval[frameStats](b, `__flowscope.sampleFrames(4000)`)
	t.Logf("draw with boxes: mean %.2f ms, p95 %.2f ms, max %.2f ms (%d frames, interval mean %.1f ms); without: mean %.2f ms, p95 %.2f ms, max %.2f ms (%d frames, interval mean %.1f ms)",
		framesOn.Draw.Mean, framesOn.Draw.P95, framesOn.Draw.Max, framesOn.Frames, framesOn.Interval.Mean,
		framesOff.Draw.Mean, framesOff.Draw.P95, framesOff.Draw.Max, framesOff.Frames, framesOff.Interval.Mean)
	perf["framesGrouped"] = framesOn
	perf["framesUngrouped"] = framesOff
	perf["labelPassMs"] = st.LabelMs
	perf["globalGroupedLayoutMs"] = st.LastGlobalLayoutMs
	// A safety bound only (the draw takes a few ms).
	if framesOn.Draw.Mean > 5*max(framesOff.Draw.Mean, 4) {
		t.Errorf("drawing with boxes takes %.1f ms a frame, without %.1f ms", framesOn.Draw.Mean, framesOff.Draw.Mean)
	}
}

// A click on a service box's name collapses it into one node whose edges
// sum those of its instances; its button in the list expands it again.
func testTopoCollapse(b *tab, s *server) {
	t := b.t
	b.openTopo("map?level=instance", topoInstances)
	st := b.topo()
	var box topoBox
	for _, bx := range st.Groups {
		if bx.ID == "svc:ns-b/b-svc2" {
			box = bx
		}
	}
	if box.ID == "" {
		t.Fatal("no box for service ns-b/b-svc2")
	}
	k := eval[float64](b, `__flowscope.mapState().view.k`)
	canvas := b.canvasRect()
	// The box's name, or else a point of its header band, that is not a
	// node.
	var px, py float64
	found := false
	for _, l := range st.Labels {
		if l.ID == box.ID {
			px, py, found = canvas.Left+(l.Left+l.Right)/2, canvas.Top+(l.Top+l.Bottom)/2, true
		}
	}
	for _, f := range []float64{0.5, 0.3, 0.7, 0.15, 0.85, 0.05} {
		if found {
			break
		}
		px = canvas.Left + box.Screen.Left + (box.Screen.Right-box.Screen.Left)*f
		py = canvas.Top + box.Screen.Top + box.Head*k/2
		found = eval[map[string]any](b, fmt.Sprintf(`__flowscope.hitAt(%v, %v) || {}`, px, py))["type"] != "node"
	}
	if !found {
		t.Fatal("every point of the box's header is covered by a node")
	}
	b.do(chromedp.MouseClickXY(px, py))
	b.wait(`(s => s.nodes.includes('ns-b/b-svc2') && !s.nodes.some(id => id.startsWith('ns-b/b-svc2-i')))(__flowscope.mapState())`, 5*time.Second, "the box to collapse")
	b.wait(`!__flowscope.mapState().layoutRunning`, 10*time.Second, "the layout")
	st = b.topo()
	if st.Collapsed["ns-b/b-svc2"] != "svc:ns-b/b-svc2" {
		t.Errorf("collapsed nodes %v", st.Collapsed)
	}
	if st.NodeGroups["ns-b/b-svc2"] != "ns:ns-b" {
		t.Errorf("the collapsed node is in box %q, want ns:ns-b", st.NodeGroups["ns-b/b-svc2"])
	}
	// Its edges against the API's instance edges, summed.
	var g topoGraph
	s.getJSON(t, "/api/v1/flowgraph?level=instance", &g)
	want := map[string]float64{}
	inBox := func(id string) bool { return strings.HasPrefix(id, "ns-b/b-svc2-i") }
	for _, e := range g.Edges {
		src, tgt := e.Source, e.Target
		if inBox(src) {
			src = "ns-b/b-svc2"
		}
		if inBox(tgt) {
			tgt = "ns-b/b-svc2"
		}
		if src != e.Source || tgt != e.Target {
			want[src+"->"+tgt] += e.Rate
		}
	}
	got := eval[[]string](b, `__flowscope.mapState().edges.filter(k => k.startsWith('ns-b/b-svc2->') || k.endsWith('->ns-b/b-svc2'))`)
	if len(got) != len(want) || len(want) == 0 {
		t.Errorf("the collapsed node has %d edges, want %d (the instances' edges merged)", len(got), len(want))
	}
	for _, k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("the collapsed node has edge %s, which no instance edge makes", k)
		}
	}
	b.shot("topology-collapsed")
	// The side panel of the merged edge with the most instance edges: its
	// rate against the API's instance rates, summed. (The collapsed boxes
	// live in the page: navigate by the hash, not by a reload.)
	var key string
	for k, w := range want {
		if key == "" || w > want[key] {
			key = k
		}
	}
	src, tgt, _ := strings.Cut(key, "->")
	eval[bool](b, `(location.hash = '#/map?level=instance&source=' + encodeURIComponent(`+js(src)+`) + '&target=' + encodeURIComponent(`+js(tgt)+`), true)`)
	b.wait(`(h => h && h.textContent.includes(`+js(tgt)+`) && h.textContent.includes(`+js(src)+`))(document.querySelector('[data-testid=side-title]'))`, 10*time.Second, "the side panel of "+key)
	rateText := eval[string](b, `document.querySelector('[data-testid=map-side] .summary-stats .stat-value').textContent`)
	rate, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimRight(strings.TrimSpace(rateText), "/s")), 64)
	// The API's rates move with the covered seconds, and the panel rounds.
	if err != nil || math.Abs(rate-want[key]) > 0.1*want[key]+0.02 {
		t.Errorf("merged edge %s: the side panel reads %q, the instance edges sum to %.3f/s", key, rateText, want[key])
	}
	t.Logf("merged edge %s: side panel %s, API instance edges summed %.3f/s", key, rateText, want[key])
	if tip := eval[bool](b, `(() => { const p = __flowscope.edgePoint(`+js(src)+`, `+js(tgt)+`, 0.5); return !!p; })()`); !tip {
		t.Errorf("no point for the merged edge %s", key)
	}
	eval[bool](b, `(location.hash = '#/map?level=instance', true)`)
	b.wait(`!document.querySelector('[data-testid=side-title]') || !document.querySelector('[data-testid=side-title]').textContent.includes('→')`, 5*time.Second, "the overview")
	// Expand from the keyboard list: focus its button and press Enter.
	b.do(chromedp.Click(chromedp.CSS(`[data-testid=group-list] summary`)))
	b.do(chromedp.Focus(chromedp.CSS(`[data-testid=group-item][data-group="svc:ns-b/b-svc2"]`)), chromedp.KeyEvent(kb.Enter))
	b.wait(fmt.Sprintf(`(s => s.nodes.length === %d && !s.nodes.includes('ns-b/b-svc2'))(__flowscope.mapState())`, topoInstances), 5*time.Second, "the box to expand")
	if exp := eval[string](b, `document.querySelector('[data-testid=group-item][data-group="svc:ns-b/b-svc2"]').getAttribute('aria-expanded')`); exp != "true" {
		t.Errorf("the box's button reads aria-expanded=%q after expanding", exp)
	}
}

// After a focus, the neighbourhood gets a compact layout of its own, its
// labels do not overlap; clearing it restores the global positions.
func testTopoFocus(b *tab) {
	t := b.t
	b.openTopo("map?level=instance", topoInstances)
	global := b.positions()
	kGlobal := eval[float64](b, `__flowscope.mapState().view.k`)
	id := "ns-c/c-svc3-i1"
	b.open("map?level=instance&focus=" + url.QueryEscape(id))
	b.wait(`(s => s && s.topology.filtered && !s.layoutRunning && s.visibleNodes > 2)(__flowscope.mapState())`, 15*time.Second, "the focused layout")
	eval[bool](b, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
	st := b.topo()
	local := b.positions()
	vis := st.VisibleNodeIDs
	if !slices.Contains(vis, id) {
		t.Fatalf("the focus %s is not visible: %v", id, vis)
	}
	moved := 0
	for _, v := range vis {
		if local[v] != global[v] {
			moved++
		}
	}
	if moved < len(vis)-1 {
		t.Errorf("%d of %d visible nodes have a new position; want the neighbourhood laid out afresh", moved, len(vis))
	}
	gw, gh := bbox(global, vis)
	lw, lh := bbox(local, vis)
	kLocal := eval[float64](b, `__flowscope.mapState().view.k`)
	t.Logf("focus on %s: %d nodes; their extent %.0f × %.0f globally, %.0f × %.0f laid out afresh; zoom %.2f → %.2f; relayout %.1f ms",
		id, len(vis), gw, gh, lw, lh, kGlobal, kLocal, st.LastRelayout.Ms)
	if lw*lh >= gw*gh {
		t.Errorf("the focused layout (%.0f × %.0f) is no more compact than the global positions (%.0f × %.0f)", lw, lh, gw, gh)
	}
	if kLocal <= kGlobal {
		t.Errorf("the focused view is framed at zoom %.2f, the whole map at %.2f: not zoomed in", kLocal, kGlobal)
	}
	// Boxes of the focused layout still hold their nodes.
	boxes := map[string]topoBox{}
	for _, bx := range st.Groups {
		boxes[bx.ID] = bx
	}
	for _, v := range vis {
		if bx, ok := boxes[st.NodeGroups[v]]; ok {
			p := local[v]
			if p[0] < bx.X0 || p[0] > bx.X1 || p[1] < bx.Y0 || p[1] > bx.Y1 {
				t.Errorf("focused: node %s at %v outside its box %s", v, p, bx.ID)
			}
		} else if st.NodeGroups[v] != "" {
			t.Errorf("focused: node %s's box %s is not drawn", v, st.NodeGroups[v])
		}
	}
	checkLabels(t, "focus", st, b.canvasRect())
	if hidden := st.HiddenLabels; hidden > 0 {
		t.Logf("focus: %d labels hidden", hidden)
	}
	b.shot("topology-focus-relayout")
	// Back to the whole map: the global positions again.
	b.do(chromedp.Click(chromedp.CSS(`[data-testid=unfocus-btn]`)))
	b.wait(`(s => !s.topology.filtered && s.visibleNodes === `+fmt.Sprint(topoInstances)+`)(__flowscope.mapState())`, 5*time.Second, "the whole map")
	back := b.positions()
	for _, v := range vis {
		if back[v] != global[v] {
			t.Errorf("node %s at %v after the focus was cleared, %v before", v, back[v], global[v])
		}
	}
}

// The search filter keeps the matches and their calls, laid out afresh.
func testTopoSearch(b *tab) {
	t := b.t
	b.openTopo("map?level=instance", topoInstances)
	global := b.positions()
	b.do(chromedp.SendKeys(chromedp.CSS(`[data-testid=map-search]`), "a-svc4-"), chromedp.Click(chromedp.CSS(`[data-testid=filter-btn]`)))
	b.wait(`(s => s.topology.filtered && !s.layoutRunning)(__flowscope.mapState())`, 5*time.Second, "the filtered map")
	eval[bool](b, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
	st := b.topo()
	local := b.positions()
	matches := 0
	for _, v := range st.VisibleNodeIDs {
		if strings.Contains(v, "a-svc4-") {
			matches++
		}
	}
	if matches == 0 || len(st.VisibleNodeIDs) >= topoInstances {
		t.Fatalf("filter: %d matches among %d visible nodes", matches, len(st.VisibleNodeIDs))
	}
	for _, k := range st.VisibleEdgeKeys {
		if !strings.Contains(k, "a-svc4-") {
			t.Errorf("filter: edge %s has no matching end", k)
		}
	}
	moved := 0
	for _, v := range st.VisibleNodeIDs {
		if local[v] != global[v] {
			moved++
		}
	}
	if moved < len(st.VisibleNodeIDs)-1 {
		t.Errorf("filter: %d of %d visible nodes laid out afresh", moved, len(st.VisibleNodeIDs))
	}
	checkLabels(t, "search filter", st, b.canvasRect())
	t.Logf("search filter: %d matches, %d nodes, %d edges visible; %d labels, %d hidden", matches, len(st.VisibleNodeIDs), len(st.VisibleEdgeKeys), len(st.Labels), st.HiddenLabels)
	b.shot("topology-search-filter")
	if route := eval[map[string]any](b, `__flowscope.route().params`); route["filter"] != "a-svc4-" {
		t.Errorf("the filter is not in the URL: %v", route)
	}
}

// A rate filter hides the calls below it and the nodes left without any
// call; what is left is laid out afresh, its labels apart.
func testTopoMinRate(b *tab, g topoGraph) {
	t := b.t
	// The median edge rate: about half of the calls go.
	rates := make([]float64, 0, len(g.Edges))
	for _, e := range g.Edges {
		rates = append(rates, e.Rate)
	}
	slices.Sort(rates)
	minRate := rates[len(rates)*3/4]
	b.openTopo("map?level=instance", topoInstances)
	b.open(fmt.Sprintf("map?level=instance&minRate=%v", minRate))
	b.wait(`(s => s && s.nodes.length > 0 && s.topology.filtered && !s.layoutRunning)(__flowscope.mapState())`, 15*time.Second, "the rate-filtered map")
	eval[bool](b, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
	st := b.topo()
	linked := map[string]bool{}
	for _, k := range st.VisibleEdgeKeys {
		s, d, _ := strings.Cut(k, "->")
		linked[s], linked[d] = true, true
	}
	for _, v := range st.VisibleNodeIDs {
		if !linked[v] {
			t.Errorf("minRate: node %s is shown without any visible call", v)
		}
	}
	if len(st.VisibleNodeIDs) >= topoInstances || len(st.VisibleNodeIDs) == 0 {
		t.Errorf("minRate %v: %d of %d nodes visible, want some hidden", minRate, len(st.VisibleNodeIDs), topoInstances)
	}
	checkLabels(t, "minRate", st, b.canvasRect())
	t.Logf("minRate %.3f/s: %d nodes and %d edges visible; %d labels, %d hidden", minRate, len(st.VisibleNodeIDs), len(st.VisibleEdgeKeys), len(st.Labels), st.HiddenLabels)
	b.shot("topology-minrate")
}

// At the service level, with every node visible: services in namespace
// boxes, no two labels overlapping.
func testTopoServiceLabels(b *tab, s *server) {
	t := b.t
	var g topoGraph
	s.getJSON(t, "/api/v1/flowgraph?level=service", &g)
	b.openTopo("map?level=service", len(g.Nodes))
	st := b.topo()
	if !st.Grouped || len(st.Groups) != topoNamespaces {
		t.Errorf("service level: grouped %v with %d boxes, want %d namespace boxes", st.Grouped, len(st.Groups), topoNamespaces)
	}
	pos := b.positions()
	boxes := map[string]topoBox{}
	for _, bx := range st.Groups {
		boxes[bx.ID] = bx
	}
	for _, n := range g.Nodes {
		bx, ok := boxes[st.NodeGroups[n.ID]]
		if !ok || st.NodeGroups[n.ID] != "ns:"+n.Namespace {
			t.Errorf("service %s in box %q, want ns:%s", n.ID, st.NodeGroups[n.ID], n.Namespace)
			continue
		}
		if p := pos[n.ID]; p[0] < bx.X0 || p[0] > bx.X1 || p[1] < bx.Y0+bx.Head || p[1] > bx.Y1 {
			t.Errorf("service %s at %v outside its box", n.ID, p)
		}
	}
	if len(st.VisibleNodeIDs) != len(g.Nodes) {
		t.Errorf("%d of %d services visible", len(st.VisibleNodeIDs), len(g.Nodes))
	}
	checkLabels(t, "service level", st, b.canvasRect())
	nodeLabels := 0
	for _, l := range st.Labels {
		if l.Kind == "node" {
			nodeLabels++
		}
	}
	t.Logf("service level: %d of %d node labels placed (%d hidden)", nodeLabels, len(g.Nodes), st.HiddenLabels)
	if nodeLabels < len(g.Nodes)*3/4 {
		t.Errorf("only %d of %d services are labelled", nodeLabels, len(g.Nodes))
	}
	b.shot("topology-labels-service")
}

// The two-click path: a double-click on an instance focuses its
// neighbourhood; a click on one of its calls shows the call in the side
// panel. Timed in the page from each input event to the frame that shows
// the result.
func testTopoTwoClicks(b *tab, perf map[string]any) {
	t := b.t
	b.openTopo("map?level=instance", topoInstances)
	id := "ns-a/a-svc2-i3"
	p := eval[point](b, `__flowscope.nodePoint(`+js(id)+`)`)
	if hit := eval[map[string]any](b, fmt.Sprintf(`__flowscope.hitAt(%v, %v) || {}`, p.X, p.Y)); hit["id"] != id {
		t.Fatalf("the point of %s hits %v", id, hit)
	}
	eval[bool](b, `(() => {
		window.__topo = {};
		document.addEventListener('dblclick', e => { window.__topo.dbl = e.timeStamp; }, true);
		document.addEventListener('pointerup', e => { window.__topo.up = e.timeStamp; }, true);
		const side = document.querySelector('[data-testid=map-side]');
		new MutationObserver(() => {
			const h = side.querySelector('[data-testid=side-title]');
			if (h && h.textContent.includes('→') && !window.__topo.side) window.__topo.side = performance.now();
		}).observe(side, {childList: true, subtree: true, characterData: true});
		return true;
	})()`)
	relayouts := b.topo().Relayouts
	b.do(chromedp.MouseClickXY(p.X, p.Y), chromedp.MouseClickXY(p.X, p.Y, chromedp.ClickCount(2)))
	b.wait(fmt.Sprintf(`(s => s.topology.filtered && s.topology.relayouts > %d && s.topology.lastRelayout.drawnAt > 0)(__flowscope.mapState())`, relayouts), 10*time.Second, "the focus on "+id)
	focusMs := eval[float64](b, `__flowscope.mapState().topology.lastRelayout.drawnAt - window.__topo.dbl`)
	b.wait(`!__flowscope.mapState().layoutRunning`, 10*time.Second, "the focused layout to settle")
	// An edge of the focus node, at a point free to click.
	var ep point
	var src, tgt string
	found := false
	for _, k := range b.topo().VisibleEdgeKeys {
		s, d, _ := strings.Cut(k, "->")
		if s != id && d != id {
			continue
		}
		for _, f := range []float64{0.5, 0.4, 0.6, 0.3, 0.7} {
			ep = eval[point](b, fmt.Sprintf(`__flowscope.edgePoint(%s, %s, %v)`, js(s), js(d), f))
			hit := eval[map[string]any](b, fmt.Sprintf(`__flowscope.hitAt(%v, %v) || {}`, ep.X, ep.Y))
			if hit["type"] == "edge" && hit["source"] == s && hit["target"] == d {
				src, tgt, found = s, d, true
				break
			}
		}
		if found {
			break
		}
	}
	if !found {
		t.Fatal("no edge of the focused node is free to click")
	}
	eval[bool](b, `(() => { window.__topo.side = 0; window.__topo.up = 0; return true; })()`)
	b.do(chromedp.MouseClickXY(ep.X, ep.Y))
	b.wait(`window.__topo.side > 0 && document.querySelector('[data-testid=side-title]').textContent.includes(`+js(tgt)+`)`, 10*time.Second, "the side panel of the edge")
	b.wait(`__flowscope.mapState().topology.selDrawnAt > window.__topo.up`, 5*time.Second, "the selected edge drawn")
	sideMs := eval[float64](b, `window.__topo.side - window.__topo.up`)
	drawMs := eval[float64](b, `__flowscope.mapState().topology.selDrawnAt - window.__topo.up`)
	edgeMs := max(sideMs, drawMs)
	total := focusMs + edgeMs
	t.Logf("two-click path at %d instances / %d edges: double-click → focused layout drawn %.0f ms; click on %s → %s → side panel %.0f ms, selection drawn %.0f ms; total %.0f ms (target < 1 s)",
		topoInstances, topoEdges, focusMs, src, tgt, sideMs, drawMs, total)
	perf["twoClick"] = map[string]any{"focusToFrameMs": focusMs, "edgeToSidePanelMs": sideMs, "edgeToFrameMs": drawMs, "totalMs": total, "node": id, "edge": src + "->" + tgt}
	b.shot("topology-two-click")
	if total > 5000 || total <= 0 {
		t.Errorf("two-click path took %.0f ms (target 1 s, fail above 5 s)", total)
	}
}

// TestTopologyXSS: namespace, service and instance names full of markup
// are drawn as text on the map and in the box list; nothing runs.
func TestTopologyXSS(t *testing.T) {
	browser(t)
	s := startCollector(t)
	evil := []topoInstance{
		{ns: xssImg, svc: xssScript, id: xssSVG},
		{ns: xssImg, svc: "ok", id: "ok-1"},
		{ns: "plain", svc: xssQuote, id: `<img src=x onerror=alert(1)>`},
	}
	start := time.Now().Add(-60 * time.Second)
	var spans []topoSpan
	for i := range 20 {
		for j, pair := range [][2]topoInstance{{evil[0], evil[1]}, {evil[1], evil[2]}, {evil[2], evil[0]}} {
			tid, ids := newIDs(2)
			st := start.Add(time.Duration(i*3+j) * time.Second)
			spans = append(spans,
				topoSpan{pair[0], span{traceID: tid, spanID: ids[0], name: xssSVG, kind: tracepb.Span_SPAN_KIND_CLIENT, start: st, dur: 5 * time.Millisecond}},
				topoSpan{pair[1], span{traceID: tid, spanID: ids[1], parentID: ids[0], name: xssImg, kind: tracepb.Span_SPAN_KIND_SERVER, start: st, dur: 4 * time.Millisecond}})
		}
	}
	postTopology(t, s, spans)
	deadline := time.Now().Add(15 * time.Second)
	for {
		var g topoGraph
		s.getJSON(t, "/api/v1/flowgraph?level=instance", &g)
		if len(g.Nodes) == 3 && len(g.Edges) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance graph: %d nodes, %d edges", len(g.Nodes), len(g.Edges))
		}
		time.Sleep(100 * time.Millisecond)
	}
	b := newTab(t, s.base)
	for _, route := range []string{"map?level=instance", "map?level=service", "map?level=instance&focus=" + url.QueryEscape(xssImg+"/ok-1")} {
		b.open(route)
		b.wait(`(s => s && s.nodes.length === 3 && !s.layoutRunning)(__flowscope.mapState())`, 10*time.Second, "the map of "+route)
		eval[bool](b, `new Promise(r => setTimeout(() => r(true), 300))`)
		st := b.topo()
		if !st.Grouped || len(st.Groups) == 0 {
			t.Errorf("%s: no boxes", route)
		}
		names := map[string]bool{}
		for _, bx := range st.Groups {
			names[bx.Full] = true
		}
		if !names[xssImg] {
			t.Errorf("%s: box names %v lack the namespace %q", route, names, xssImg)
		}
		// The list of boxes shows the names literally.
		list := eval[string](b, `document.querySelector('[data-testid=group-list]').textContent`)
		if !strings.Contains(list, xssImg) {
			t.Errorf("%s: the box list %q lacks %q", route, list, xssImg)
		}
		if n := eval[int](b, `document.querySelectorAll('[data-testid=group-list] img, [data-testid=group-list] script, [data-testid=group-list] svg, .map-wrap img').length`); n > 0 {
			t.Errorf("%s: %d injected elements", route, n)
		}
		if pwned := eval[any](b, `window.__pwned || null`); pwned != nil {
			t.Errorf("%s: injected script ran: %v", route, pwned)
		}
	}
	// Collapse the namespace from the keyboard list: its node's name too.
	b.open("map?level=instance")
	b.wait(`(s => s && s.nodes.length === 3)(__flowscope.mapState())`, 10*time.Second, "the map")
	b.do(chromedp.Click(chromedp.CSS(`[data-testid=group-list] summary`)))
	b.do(chromedp.Click(chromedp.CSS(`[data-testid=group-item][data-kind=namespace]`)))
	b.wait(`__flowscope.mapState().nodes.some(id => id.endsWith('/*'))`, 5*time.Second, "a collapsed namespace")
	b.shot("topology-xss")
	b.checkClean()
}
