package aggregate

import (
	"fmt"
	"slices"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

const (
	kInternal = tracepb.Span_SPAN_KIND_INTERNAL
	kServer   = tracepb.Span_SPAN_KIND_SERVER
	kClient   = tracepb.Span_SPAN_KIND_CLIENT
	kProducer = tracepb.Span_SPAN_KIND_PRODUCER
	kConsumer = tracepb.Span_SPAN_KIND_CONSUMER
)

// A small trace: frontend root (1) → client (2) → cart server (3).
var (
	feRoot   = tspan{svc: "frontend", trace: 1, id: 1, name: "GET /", kind: kServer, dur: 100 * ms}
	feClient = tspan{svc: "frontend", trace: 1, id: 2, parent: 1, name: "GET /cart", kind: kClient, start: 10 * ms, dur: 50 * ms}
	cartSrv  = tspan{svc: "cart", trace: 1, id: 3, parent: 2, name: "GET /cart", kind: kServer, start: 12 * ms, dur: 40 * ms}
)

func with(s tspan, f func(*tspan)) tspan {
	f(&s)
	return s
}

func dbClient(attrs ...kv) tspan {
	return tspan{svc: "cart", trace: 2, id: 20, parent: 1, name: "query", kind: kClient, start: 5 * ms, dur: 7 * ms, attrs: attrs}
}

type pairCase struct {
	name   string
	chunks [][]tspan
	gap    time.Duration // between chunk commits; default 100ms
	// beforeExpire are the edges flushed before Expire (nil: not checked).
	beforeExpire []string
	edges        []string
	stats        Stats // UnpairedClients, UnpairedServers, VirtualEdges, PairedEdges, Evicted checked
	opts         func(*Options)
}

func (c pairCase) run(t *testing.T) {
	t.Helper()
	opts := testOptions()
	if c.opts != nil {
		c.opts(&opts)
	}
	gap := c.gap
	if gap == 0 {
		gap = 100 * time.Millisecond
	}
	a := New(opts)
	var last int64
	for i, spans := range c.chunks {
		last = commitAt(time.Duration(i) * gap)
		a.Apply(uint64(i+1), last, traces(t, spans...))
	}
	pre := a.Flush()
	if c.beforeExpire != nil {
		diffLines(t, "edges before Expire", edgeLines(pre.Windows), c.beforeExpire)
	}
	a.Expire(last + int64(opts.PairWait) + 1)
	cp := a.Flush()
	diffLines(t, "edges", edgeLines(append(pre.Windows, cp.Windows...)), c.edges)
	st := a.Stats()
	got := Stats{UnpairedClients: st.UnpairedClients, UnpairedServers: st.UnpairedServers,
		VirtualEdges: st.VirtualEdges, PairedEdges: st.PairedEdges, Evicted: st.Evicted}
	if got != c.stats {
		t.Errorf("stats = %+v, want %+v", got, c.stats)
	}
	if st.PendingClients != 0 || st.PendingServers != 0 || st.RememberedParents != 0 {
		t.Errorf("state left after Expire: %+v", st)
	}
	if cp.ReplayFrom != cp.AppliedSeq+1 || cp.AppliedSeq != uint64(len(c.chunks)) {
		t.Errorf("checkpoint = %+v, want AppliedSeq %d and ReplayFrom AppliedSeq+1", cp, len(c.chunks))
	}
}

func TestPairing(t *testing.T) {
	feCart := "frontend->cart GET /cart n=1 err=0 max=50ms"
	paired1 := Stats{PairedEdges: 1}
	cases := []pairCase{
		{name: "client then server, separate requests",
			chunks:       [][]tspan{{feRoot, feClient}, {cartSrv}},
			beforeExpire: []string{feCart},
			edges:        []string{feCart}, stats: paired1},
		{name: "server before client",
			chunks:       [][]tspan{{cartSrv}, {feRoot}, {feClient}},
			beforeExpire: []string{feCart},
			edges:        []string{feCart}, stats: paired1},
		{name: "same request",
			chunks: [][]tspan{{cartSrv, feClient, feRoot}},
			edges:  []string{feCart}, stats: paired1},
		{name: "missing parent",
			chunks: [][]tspan{{cartSrv}},
			edges:  nil, stats: Stats{UnpairedServers: 1}},
		{name: "root server makes no edge",
			chunks: [][]tspan{{feRoot}},
			edges:  nil},
		{name: "client without server or target",
			chunks: [][]tspan{{feClient}},
			edges:  nil, stats: Stats{UnpairedClients: 1}},
		{name: "halves too far apart in commit time",
			chunks: [][]tspan{{feClient}, {cartSrv}},
			gap:    11 * time.Second,
			edges:  nil, stats: Stats{UnpairedClients: 1, UnpairedServers: 1}},
		{name: "halves just within PairWait",
			chunks: [][]tspan{{feClient}, {cartSrv}},
			gap:    10 * time.Second,
			edges:  []string{feCart}, stats: paired1},
		{name: "client error",
			chunks: [][]tspan{{with(feClient, func(s *tspan) { s.err = true })}, {cartSrv}},
			edges:  []string{"frontend->cart GET /cart n=1 err=1 max=50ms"}, stats: paired1},
		{name: "server error, server first",
			chunks: [][]tspan{{with(cartSrv, func(s *tspan) { s.err = true })}, {feClient}},
			edges:  []string{"frontend->cart GET /cart n=1 err=1 max=50ms"}, stats: paired1},
		{name: "non-client parent in another service, parent first",
			chunks: [][]tspan{
				{{svc: "gw", trace: 3, id: 1, name: "route", kind: kInternal, dur: 30 * ms}},
				{{svc: "users", trace: 3, id: 2, parent: 1, name: "GET /u", kind: kServer, dur: 20 * ms}},
			},
			edges: []string{"gw->users GET /u n=1 err=0 max=20ms"}, stats: paired1},
		{name: "non-client parent in another service, child first",
			chunks: [][]tspan{
				{{svc: "users", trace: 3, id: 2, parent: 1, name: "GET /u", kind: kServer, dur: 20 * ms, err: true}},
				{{svc: "gw", trace: 3, id: 1, name: "route", kind: kInternal, dur: 30 * ms}},
			},
			edges: []string{"gw->users GET /u n=1 err=1 max=20ms"}, stats: paired1},
		{name: "non-client parent in the same service",
			chunks: [][]tspan{
				{{svc: "gw", trace: 3, id: 2, parent: 1, name: "authz", kind: kServer, dur: 2 * ms}},
				{{svc: "gw", trace: 3, id: 1, name: "ingress", kind: kServer, dur: 30 * ms}},
				{{svc: "gw", trace: 3, id: 3, parent: 1, name: "authz", kind: kServer, dur: 2 * ms}},
			},
			edges: nil},
		{name: "other instance of the same service is the same service",
			chunks: [][]tspan{
				{{svc: "gw", resAttrs: []kv{{"service.instance.id", "a"}}, trace: 3, id: 1, name: "ingress", kind: kInternal, dur: 30 * ms}},
				{{svc: "gw", resAttrs: []kv{{"service.instance.id", "b"}}, trace: 3, id: 2, parent: 1, name: "authz", kind: kServer, dur: 2 * ms}},
			},
			edges: nil},
		{name: "fan-out: consumers before, with and after the producer",
			chunks: [][]tspan{
				{{svc: "b", trace: 4, id: 2, parent: 1, name: "consume", kind: kConsumer, dur: 3 * ms}},
				{{svc: "a", trace: 4, id: 1, name: "publish", kind: kProducer, dur: 1 * ms, attrs: []kv{{"messaging.destination.name", "events"}}},
					{svc: "c", trace: 4, id: 3, parent: 1, name: "consume", kind: kConsumer, dur: 4 * ms}},
				{{svc: "d", trace: 4, id: 4, parent: 1, name: "consume", kind: kConsumer, dur: 5 * ms}},
				{{svc: "d", trace: 4, id: 5, parent: 1, name: "consume", kind: kConsumer, dur: 5 * ms}},
			},
			edges: []string{
				"a->b publish n=1 err=0 max=1ms",
				"a->c publish n=1 err=0 max=1ms",
				"a->d publish n=2 err=0 max=1ms",
			}, stats: Stats{PairedEdges: 4}},
		{name: "duplicate client span (retried request) pairs once",
			chunks: [][]tspan{{feClient}, {feClient}, {cartSrv}},
			edges:  []string{feCart}, stats: paired1},
		{name: "eviction over MaxPending resolves the oldest batch",
			opts: func(o *Options) { o.MaxPending = 2 },
			chunks: [][]tspan{
				{dbClient(kv{"db.system", "redis"})},
				{with(dbClient(kv{"db.system", "mysql"}), func(s *tspan) { s.id = 21 })},
				{with(dbClient(kv{"db.system", "pg"}), func(s *tspan) { s.id = 22 })},
			},
			beforeExpire: []string{"cart->*redis query n=1 err=0 max=7ms"},
			edges: []string{"cart->*mysql query n=1 err=0 max=7ms", "cart->*pg query n=1 err=0 max=7ms",
				"cart->*redis query n=1 err=0 max=7ms"},
			stats: Stats{VirtualEdges: 3, Evicted: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, c.run)
	}
}

// TestVirtualTargets checks the naming of uninstrumented callees.
func TestVirtualTargets(t *testing.T) {
	cases := []struct {
		name     string
		attrs    []kv
		resAttrs []kv
		kind     tracepb.Span_SpanKind
		want     string // "" = UnpairedClients
	}{
		{name: "db.system", attrs: []kv{{"db.system", "postgresql"}}, want: "postgresql"},
		{name: "db.name beats db.system", attrs: []kv{{"db.system", "mysql"}, {"db.name", "shop"}}, want: "shop"},
		{name: "db.namespace beats db.name", attrs: []kv{{"db.name", "old"}, {"db.namespace", "orders"}, {"db.system", "postgresql"}}, want: "orders"},
		{name: "peer.service beats all", attrs: []kv{{"server.address", "10.1.1.1"}, {"db.system", "redis"}, {"peer.service", "cache"}}, want: "cache"},
		{name: "messaging destination", kind: kProducer, attrs: []kv{{"messaging.system", "kafka"}, {"messaging.destination.name", "orders"}}, want: "orders"},
		{name: "server.address", attrs: []kv{{"server.address", "api.example.com"}, {"server.port", "443"}}, want: "api.example.com"},
		{name: "resource when the span has none", resAttrs: []kv{{"peer.service", "legacy"}}, want: "legacy"},
		{name: "span before resource for the same key", attrs: []kv{{"db.system", "redis"}}, resAttrs: []kv{{"db.system", "memcached"}}, want: "redis"},
		{name: "higher-priority key on the resource wins", attrs: []kv{{"server.address", "10.0.0.1"}}, resAttrs: []kv{{"peer.service", "billing"}}, want: "billing"},
		{name: "empty value ignored", attrs: []kv{{"peer.service", ""}, {"db.system", "redis"}}, want: "redis"},
		{name: "none", attrs: []kv{{"http.method", "GET"}}, want: ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := dbClient(c.attrs...)
			s.resAttrs = c.resAttrs
			if c.kind != 0 {
				s.kind = c.kind
			}
			a := New(testOptions())
			a.Apply(1, commitAt(0), traces(t, s))
			if cp := a.Flush(); len(edgeLines(cp.Windows)) != 0 {
				t.Fatalf("virtual edge before Expire: %v", edgeLines(cp.Windows))
			}
			a.Expire(commitAt(11 * time.Second))
			var want []string
			if c.want != "" {
				want = []string{fmt.Sprintf("cart->*%s query n=1 err=0 max=7ms", c.want)}
			}
			cp := a.Flush()
			diffLines(t, "edges", edgeLines(cp.Windows), want)
			for _, w := range cp.Windows {
				for k := range w.Edges {
					if !k.Target.Virtual || k.Target.At(LevelZone) != c.want || k.Target.At(LevelInstance) != c.want {
						t.Errorf("target node %+v: want virtual %q at every level", k.Target, c.want)
					}
				}
			}
			if st := a.Stats(); (c.want == "") != (st.UnpairedClients == 1) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestFixtures applies the OTLP/JSON traces of testdata whole, one
// resource per request in order, and in reverse order: the edges are the
// same.
func TestFixtures(t *testing.T) {
	cases := []struct {
		file            string
		edges           []string
		unpairedServers int64
	}{
		{file: "trace-client-server.json", edges: []string{
			"checkout->*orders INSERT orders n=1 err=0 max=30ms",
			"checkout->*redis GET n=1 err=0 max=2ms",
			"checkout->payment payment.Charge n=1 err=0 max=100ms",
			"frontend->*api.example.com GET /rates n=1 err=0 max=39ms",
			"frontend->checkout POST /checkout n=1 err=0 max=190ms",
		}},
		{file: "trace-messaging.json", edges: []string{
			"orders->*audit-log audit-log publish n=1 err=0 max=1ms",
			"orders->email order-events publish n=1 err=1 max=2ms",
			"orders->shipping order-events publish n=1 err=0 max=2ms",
		}},
		{file: "trace-uninstrumented-client.json", edges: []string{
			"gateway->users GET /users/{id} n=1 err=0 max=67ms",
		}, unpairedServers: 1},
		{file: "trace-errors.json", edges: []string{
			"web->backend GET /a n=1 err=1 max=10ms",
			"web->backend GET /b n=1 err=1 max=10ms",
			"web->backend GET /c n=1 err=0 max=10ms",
		}},
	}
	for _, c := range cases {
		req := loadJSON(t, c.file)
		orders := map[string][]*coltracepb.ExportTraceServiceRequest{"whole": {req}}
		for _, rs := range req.ResourceSpans {
			orders["in order"] = append(orders["in order"], &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{rs}})
		}
		orders["reversed"] = slices.Clone(orders["in order"])
		slices.Reverse(orders["reversed"])
		for name, reqs := range orders {
			t.Run(c.file+"/"+name, func(t *testing.T) {
				a := New(testOptions())
				for i, r := range reqs {
					a.Apply(uint64(i+1), commitAt(time.Duration(i)*time.Second), parse(t, r))
				}
				ws := a.Flush().Windows
				a.Expire(commitAt(time.Minute))
				ws = append(ws, a.Flush().Windows...)
				diffLines(t, "edges", edgeLines(ws), c.edges)
				if got := a.Stats().UnpairedServers; got != c.unpairedServers {
					t.Errorf("UnpairedServers = %d, want %d", got, c.unpairedServers)
				}
			})
		}
	}
}

// TestSeries checks the per-node series: every valid span counts once,
// by (node, name, kind, status), in the window of its start.
func TestSeries(t *testing.T) {
	a := New(testOptions())
	late := with(cartSrv, func(s *tspan) { s.start = 25 * int64(time.Second); s.err = true })
	noSvc := with(feRoot, func(s *tspan) { s.svc = ""; s.id = 9 })
	a.Apply(1, commitAt(0), traces(t, feRoot, feClient, cartSrv, late, noSvc))
	cp := a.Flush()
	want := []string{
		"cart GET /cart kind=2 status=0 n=1 err=0",
		"cart GET /cart kind=2 status=2 n=1 err=1",
		"frontend GET / kind=2 status=0 n=1 err=0",
		"frontend GET /cart kind=3 status=0 n=1 err=0",
		"unknown_service GET / kind=2 status=0 n=1 err=0",
	}
	diffLines(t, "series", seriesLines(cp.Windows), want)
	if len(cp.Windows) != 2 || cp.Windows[0].Start != t0.Unix() || cp.Windows[1].Start != t0.Unix()+20 || cp.Windows[0].Width != 10 {
		for _, w := range cp.Windows {
			t.Logf("window %d+%d", w.Start, w.Width)
		}
		t.Errorf("want windows at t0 and t0+20s, 10s wide")
	}
	if cp := a.Flush(); len(cp.Windows) != 0 {
		t.Errorf("second Flush returned %d windows, want none", len(cp.Windows))
	}
}

func TestInvalidSpansSkipped(t *testing.T) {
	req := request(feRoot, feClient)
	req.ResourceSpans[0].ScopeSpans[0].Spans[1].SpanId = []byte{1, 2, 3} // invalid
	tr := parse(t, req)
	if tr.Invalid != 1 {
		t.Fatalf("Invalid = %d", tr.Invalid)
	}
	a := New(testOptions())
	a.Apply(1, commitAt(0), tr)
	diffLines(t, "series", seriesLines(a.Flush().Windows), []string{"frontend GET / kind=2 status=0 n=1 err=0"})
}

func TestNodeAttributes(t *testing.T) {
	a := New(testOptions())
	s := with(feRoot, func(s *tspan) {
		s.resAttrs = []kv{{"service.instance.id", "fe-1"}, {"cloud.availability_zone", "z1"}, {"cloud.region", "r1"}, {"service.namespace", "shop"}}
	})
	a.Apply(1, commitAt(0), traces(t, s, with(feRoot, func(s *tspan) { s.svc = "bare" })))
	want := map[string][5]string{
		"frontend": {"frontend", "fe-1", "z1", "r1", "shop"},
		"bare":     {"bare", "bare", "unknown", "unknown", "unknown"},
	}
	for k := range a.Flush().Windows[0].Series {
		n := k.Node
		got := [5]string{n.At(LevelService), n.At(LevelInstance), n.At(LevelZone), n.At(LevelRegion), n.At(LevelNamespace)}
		if got != want[n.Service] {
			t.Errorf("node %+v at levels = %v, want %v", n, got, want[n.Service])
		}
	}
}

func TestStatsGauges(t *testing.T) {
	a := New(testOptions())
	a.Apply(1, commitAt(0), traces(t, feRoot, feClient, with(cartSrv, func(s *tspan) { s.parent = 77 })))
	st := a.Stats()
	// feRoot and cartSrv are remembered parents; feClient a client half;
	// cartSrv also waits for its parent 77.
	if st.PendingClients != 1 || st.PendingServers != 1 || st.RememberedParents != 2 {
		t.Errorf("stats = %+v", st)
	}
	a.Expire(commitAt(20 * time.Second))
	if st := a.Stats(); st.PendingClients != 0 || st.PendingServers != 0 || st.RememberedParents != 0 ||
		st.UnpairedClients != 1 || st.UnpairedServers != 1 {
		t.Errorf("after Expire: stats = %+v", st)
	}
}

func TestClamped(t *testing.T) {
	o := testOptions()
	o.MaxValue = time.Second
	a := New(o)
	a.Apply(1, commitAt(0), traces(t, with(feRoot, func(s *tspan) { s.dur = int64(5 * time.Second) }), with(feRoot, func(s *tspan) { s.id = 5 })))
	w := a.Flush().Windows[0]
	for _, r := range w.Series {
		if r.Count != 2 || r.Clamped != 1 || r.Hist.Max() < int64(990*time.Millisecond) || r.Hist.Max() > int64(1010*time.Millisecond) {
			t.Errorf("rollup count %d clamped %d max %d", r.Count, r.Clamped, r.Hist.Max())
		}
		if r.Exemplars[0].Value != int64(5*time.Second) {
			t.Errorf("exemplar value %d, want the unclamped duration", r.Exemplars[0].Value)
		}
	}
	if st := a.Stats(); st.Clamped != 1 {
		t.Errorf("Stats.Clamped = %d", st.Clamped)
	}
}

func TestOpen(t *testing.T) {
	a := New(testOptions())
	a.Apply(1, commitAt(0), traces(t, feRoot, with(feRoot, func(s *tspan) { s.id = 7; s.start = int64(30 * time.Second) })))
	base := t0.Unix()
	for _, c := range []struct {
		from, to int64
		want     []int64
	}{
		{base, base + 10, []int64{base}},
		{base - 100, base + 100, []int64{base, base + 30}},
		{base + 5, base + 31, []int64{base, base + 30}},
		{base + 10, base + 30, nil},
	} {
		var got []int64
		for _, w := range a.Open(c.from, c.to) {
			got = append(got, w.Start)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Open(%d, %d) = %v, want %v", c.from-base, c.to-base, got, c.want)
		}
	}
	// Open returns copies: changing them changes nothing inside.
	for _, w := range a.Open(base, base+10) {
		for _, r := range w.Series {
			r.Merge(r)
		}
	}
	for _, w := range a.Flush().Windows {
		for _, r := range w.Series {
			if r.Count != 1 || r.Hist.TotalCount() != 1 {
				t.Errorf("window %d: count %d, hist %d", w.Start-base, r.Count, r.Hist.TotalCount())
			}
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name string
		f    func(*Options)
		ok   bool
	}{
		{"defaults", func(*Options) {}, true},
		{"zero means default", func(o *Options) { *o = Options{} }, true},
		{"window 1s", func(o *Options) { o.WindowWidth = time.Second }, true},
		{"window 1m", func(o *Options) { o.WindowWidth = time.Minute }, true},
		{"window 7s", func(o *Options) { o.WindowWidth = 7 * time.Second }, false},
		{"window 1.5s", func(o *Options) { o.WindowWidth = 1500 * time.Millisecond }, false},
		{"window 2m", func(o *Options) { o.WindowWidth = 2 * time.Minute }, false},
		{"negative wait", func(o *Options) { o.PairWait = -1 }, false},
		{"digits 6", func(o *Options) { o.SignificantDigits = 6 }, false},
		{"max value 1ns", func(o *Options) { o.MaxValue = 1 }, false},
		{"exemplars 256", func(o *Options) { o.MaxExemplars = 256 }, false},
		{"negative pending", func(o *Options) { o.MaxPending = -5 }, false},
		{"parent slots 4", func(o *Options) { o.ParentSlots = 4 }, true},
		{"negative parent slots", func(o *Options) { o.ParentSlots = -1 }, false},
	}
	for _, c := range cases {
		o := DefaultOptions()
		c.f(&o)
		if err := o.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", c.name, err, c.ok)
		}
		if n := o.normalized(); n.Validate() != nil || n.WindowWidth == 0 {
			t.Errorf("%s: normalized options %+v are invalid", c.name, n)
		}
	}
}

func TestParseLevel(t *testing.T) {
	for _, l := range []Level{LevelService, LevelInstance, LevelZone, LevelRegion, LevelNamespace} {
		if got, err := ParseLevel(l.String()); err != nil || got != l {
			t.Errorf("ParseLevel(%q) = %v, %v", l.String(), got, err)
		}
	}
	if l, err := ParseLevel(""); err != nil || l != LevelService {
		t.Errorf("ParseLevel(\"\") = %v, %v", l, err)
	}
	if _, err := ParseLevel("galaxy"); err == nil {
		t.Error("ParseLevel(galaxy) succeeded")
	}
}

// TestDurationUnknown checks that spans marked with DurationUnknownAttr (and
// an end equal to their start) count as calls of their series and edges
// without adding a duration, while the mark on a span that has a duration
// is ignored.
func TestDurationUnknown(t *testing.T) {
	untimed := func(s tspan) tspan {
		s.dur = 0
		return s
	}
	req := request(
		feRoot,
		untimed(feClient), // cs without cr: the edge is a call without latency
		untimed(cartSrv),  // sr without ss
		with(cartSrv, func(s *tspan) { s.id = 4; s.parent = 9 }), // marked but timed: recorded
	)
	mark := &commonpb.KeyValue{Key: DurationUnknownAttr, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}}
	spans := func(i int) []*tracepb.Span { return req.ResourceSpans[i].ScopeSpans[0].Spans }
	for _, sp := range append(spans(0)[1:], spans(1)...) {
		sp.Attributes = append(sp.Attributes, mark)
	}
	a := New(testOptions())
	a.Apply(1, commitAt(0), parse(t, req))
	a.Expire(commitAt(0) + int64(time.Minute))
	ws := a.Flush().Windows
	merged := NewWindow(0, 1)
	for _, w := range ws {
		merged.Merge(w)
	}
	timed := func(r *Rollup) int64 { return r.Hist.TotalCount() }
	var cartCount, cartTimed, feClientCount, feClientTimed int64
	for k, r := range merged.Series {
		switch {
		case k.Node.Service == "cart":
			cartCount += r.Count
			cartTimed += timed(r)
		case k.Node.Service == "frontend" && k.Kind == int32(kClient):
			feClientCount += r.Count
			feClientTimed += timed(r)
		}
	}
	if cartCount != 2 || cartTimed != 1 {
		t.Errorf("cart series: count %d timed %d, want 2 calls of which 1 timed", cartCount, cartTimed)
	}
	if feClientCount != 1 || feClientTimed != 0 {
		t.Errorf("frontend client series: count %d timed %d, want 1 call, none timed", feClientCount, feClientTimed)
	}
	if len(merged.Edges) != 1 {
		t.Fatalf("edges: %v", edgeLines(ws))
	}
	for _, r := range merged.Edges {
		if r.Count != 1 || timed(r) != 0 || len(r.Exemplars) != 0 {
			t.Errorf("edge: count %d timed %d exemplars %d, want 1 untimed call", r.Count, timed(r), len(r.Exemplars))
		}
	}
}
