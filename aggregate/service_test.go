package aggregate

import (
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/otlpwire"
)

func TestServiceName(t *testing.T) {
	long := strings.Repeat("x", otlpwire.MaxNameBytes-len(SyntheticServicePrefix))
	for _, tc := range []struct {
		name  string
		attrs []otlpwire.Attr
		want  string
	}{
		{"service", []otlpwire.Attr{{Key: []byte("service.name"), Value: []byte("frontend")}}, "frontend"},
		{"no service", nil, "unknown_service"},
		{"synthetic", []otlpwire.Attr{
			{Key: []byte("service.name"), Value: []byte("synthetics")},
			{Key: []byte("synthetic.check"), Value: []byte("checkout-journey")},
		}, "synthetic:checkout-journey"},
		{"synthetic without service.name", []otlpwire.Attr{{Key: []byte("synthetic.check"), Value: []byte("c")}}, "synthetic:c"},
		{"empty check is ignored", []otlpwire.Attr{
			{Key: []byte("service.name"), Value: []byte("synthetics")},
			{Key: []byte("synthetic.check"), Value: nil},
		}, "synthetics"},
		{"longest check", []otlpwire.Attr{{Key: []byte("synthetic.check"), Value: []byte(long)}}, SyntheticServicePrefix + long},
		{"too long a check is ignored", []otlpwire.Attr{
			{Key: []byte("service.name"), Value: []byte("synthetics")},
			{Key: []byte("synthetic.check"), Value: []byte(long + "x")},
		}, "synthetics"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &otlpwire.Resource{Attrs: tc.attrs}
			for _, a := range tc.attrs {
				if string(a.Key) == "service.name" {
					r.Service = a.Value
				}
			}
			got, _ := ServiceName(nil, r)
			if string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	// With room in the buffer it does not allocate.
	r := &otlpwire.Resource{Service: []byte("synthetics"), Attrs: []otlpwire.Attr{
		{Key: []byte("service.name"), Value: []byte("synthetics")},
		{Key: []byte("synthetic.check"), Value: []byte("checkout-journey")},
	}}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { _, buf = ServiceName(buf[:0], r) }); n != 0 {
		t.Fatalf("%v allocations per call", n)
	}
}

// TestSyntheticNode checks that the prober's spans (resource service.name
// synthetics, synthetic.check) make the node synthetic:<check>, calling
// the service its CLIENT step spans reach, one call per step; two checks
// are two nodes.
func TestSyntheticNode(t *testing.T) {
	a := New(testOptions())
	prober := func(check string) []kv { return []kv{{"synthetic.check", check}} }
	var spans []tspan
	id := uint64(0)
	next := func() uint64 { id++; return id }
	for run := range 4 {
		check := "checkout-journey"
		if run == 3 {
			check = "login"
		}
		tr := uint64(100 + run)
		root := next()
		spans = append(spans, tspan{svc: "synthetics", resAttrs: prober(check), trace: tr, id: root, name: check, kind: kInternal, dur: 50 * ms})
		for step := range 3 {
			c, s := next(), next()
			start := int64(step) * 10 * ms
			spans = append(spans,
				tspan{svc: "synthetics", resAttrs: prober(check), trace: tr, id: c, parent: root, name: "POST", kind: kClient, start: start, dur: 8 * ms,
					attrs: []kv{{"server.address", "shop.local"}}},
				tspan{svc: "frontend", trace: tr, id: s, parent: c, name: "POST /login", kind: kServer, start: start + ms, dur: 6 * ms})
		}
	}
	a.Apply(1, commitAt(0), traces(t, spans...))
	a.Expire(commitAt(time.Minute))
	ws := a.Flush().Windows
	diffLines(t, "edges", edgeLines(ws), []string{
		"synthetic:checkout-journey->frontend POST n=9 err=0 max=8ms",
		"synthetic:login->frontend POST n=3 err=0 max=8ms",
	})
	diffLines(t, "series", seriesLines(ws), []string{
		"frontend POST /login kind=2 status=0 n=12 err=0",
		"synthetic:checkout-journey POST kind=3 status=0 n=9 err=0",
		"synthetic:checkout-journey checkout-journey kind=1 status=0 n=3 err=0",
		"synthetic:login POST kind=3 status=0 n=3 err=0",
		"synthetic:login login kind=1 status=0 n=1 err=0",
	})
}
