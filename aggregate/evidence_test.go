package aggregate

import (
	"testing"
	"time"
)

// TestRetriesAndFailures checks the retry and timeout evidence of edge
// rollups: a client span with http.request.resend_count ≥ 1 counts as a
// retried call, paired or virtual;
// failed calls' durations are kept by octave band, merged and encoded.
func TestRetriesAndFailures(t *testing.T) {
	a := New(testOptions())
	var spans []tspan
	// 10 calls frontend → cart, 3 of them resends (one "0": not a retry),
	// the failed ones ending at 100 ms, a timeout.
	for i := uint64(0); i < 10; i++ {
		c := with(feClient, func(s *tspan) {
			s.trace, s.id, s.parent = 100+i, 2, 1
			switch {
			case i < 3:
				s.attrs = []kv{{"http.request.resend_count", "1"}}
			case i == 3:
				s.attrs = []kv{{"http.request.resend_count", "0"}}
			}
			if i >= 5 {
				s.err, s.dur = true, int64(100*time.Millisecond)+int64(i)*int64(100*time.Microsecond)
			}
		})
		srv := with(cartSrv, func(s *tspan) { s.trace, s.id, s.parent = 100+i, 3, 2 })
		spans = append(spans, c, srv)
	}
	// A retried call to an uninstrumented redis (virtual edge).
	spans = append(spans, dbClient(kv{"peer.service", "redis"}, kv{"http.request.resend_count", "2"}))
	a.Apply(1, commitAt(0), traces(t, spans...))
	a.Expire(commitAt(time.Minute))
	edges := map[string]*Rollup{}
	for _, w := range a.Flush().Windows {
		for k, r := range w.Edges {
			name := k.Source.Service + "->" + k.Target.Service
			if edges[name] == nil {
				edges[name] = r.Clone()
			} else {
				edges[name].Merge(r)
			}
		}
	}
	fc := edges["frontend->cart"]
	if fc == nil || fc.Count != 10 || fc.Retried != 3 || fc.Errors != 5 {
		t.Fatalf("frontend → cart: %+v", fc)
	}
	if len(fc.Failed) != 1 || fc.Failed[0].Count != 5 || fc.Failed[0].Min != int64(100*time.Millisecond)+5*int64(100*time.Microsecond) {
		t.Errorf("failed durations %+v", fc.Failed)
	}
	if got := fc.InferTimeout(); got != fc.Failed[0].Min {
		t.Errorf("inferred timeout %d, want %d", got, fc.Failed[0].Min)
	}
	if r := edges["cart->redis"]; r == nil || r.Retried != 1 || r.Count != 1 {
		t.Errorf("cart → redis (virtual): %+v", r)
	}
	// Encoded and decoded, merged twice.
	w := NewWindow(0, 10)
	w.Edges[EdgeKey{Source: Node{Service: "frontend"}, Target: Node{Service: "cart"}, Operation: "GET /cart"}] = fc
	d, err := DecodeWindow(AppendWindow(nil, w), DefaultGeometry())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range d.Edges {
		r.Merge(r)
		if r.Retried != 6 || len(r.Failed) != 1 || r.Failed[0].Count != 10 || r.InferTimeout() != fc.Failed[0].Min {
			t.Errorf("decoded and doubled: retried %d, failed %+v", r.Retried, r.Failed)
		}
	}
}

// TestInferTimeout checks timeout inference from failed durations.
func TestInferTimeout(t *testing.T) {
	ms := int64(time.Millisecond)
	cases := []struct {
		name  string
		fails []int64 // durations of failed calls
		want  int64
	}{
		{"a timeout", []int64{200 * ms, 201 * ms, 203 * ms, 200 * ms, 202 * ms}, 200 * ms},
		{"across a band boundary", []int64{130 * ms, 131 * ms, 134 * ms, 135 * ms, 138 * ms, 140 * ms}, 130 * ms},
		{"too few", []int64{200 * ms, 200 * ms, 200 * ms, 200 * ms}, 0},
		{"spread out: errors, no timeout", []int64{3 * ms, 20 * ms, 90 * ms, 400 * ms, 7 * ms, 150 * ms}, 0},
		{"a timeout among fast failures", []int64{1 * ms, 2 * ms, 500 * ms, 501 * ms, 502 * ms, 500 * ms, 505 * ms, 503 * ms}, 500 * ms},
		{"not tight within its band", []int64{70 * ms, 80 * ms, 90 * ms, 100 * ms, 120 * ms}, 0},
	}
	for _, tc := range cases {
		r := DefaultGeometry().NewRollup()
		for _, d := range tc.fails {
			r.Record(d, true, Exemplar{})
		}
		r.Record(5*ms, false, Exemplar{}) // successes do not count
		if got := r.InferTimeout(); got != tc.want {
			t.Errorf("%s: %d, want %d (failed %+v)", tc.name, got, tc.want, r.Failed)
		}
	}
}

// TestSiblingRetries checks retries without a resend count: a call that
// repeats, from the same span, a failed call to the same callee and
// operation, and starts after it ended, is a retry (also in a later
// chunk within PairWait); a concurrent fan-out, another operation, another
// trace, a call after a successful one or a failure forgotten after
// PairWait are not.
func TestSiblingRetries(t *testing.T) {
	call := func(trace, id uint64, name string, start, dur int64, failed bool) []tspan {
		return []tspan{
			{svc: "frontend", trace: trace, id: id, parent: 1, name: name, kind: kClient, start: start, dur: dur, err: failed},
			{svc: "cart", trace: trace, id: id + 100, parent: id, name: name, kind: kServer, start: start + ms, dur: dur - 2*ms},
		}
	}
	root := func(trace uint64) tspan {
		return tspan{svc: "frontend", trace: trace, id: 1, name: "GET /", kind: kServer, dur: 500 * ms}
	}
	cases := []struct {
		name    string
		spans   []tspan
		gap     time.Duration // commit of a second chunk holding the last call
		retried int64
		count   int64
	}{
		{"retry after a failure", concat(root(1), call(1, 2, "GET /cart", 0, 50*ms, true), call(1, 3, "GET /cart", 60*ms, 20*ms, false)), 0, 1, 2},
		{"two retries", concat(root(1), call(1, 2, "GET /cart", 0, 50*ms, true), call(1, 3, "GET /cart", 60*ms, 50*ms, true), call(1, 4, "GET /cart", 120*ms, 20*ms, false)), 0, 2, 3},
		{"concurrent fan-out", concat(root(1), call(1, 2, "GET /cart", 0, 50*ms, true), call(1, 3, "GET /cart", 10*ms, 20*ms, false)), 0, 0, 2},
		{"another operation", concat(root(1), call(1, 2, "GET /cart", 0, 50*ms, true), call(1, 3, "GET /items", 60*ms, 20*ms, false)), 0, 0, 2},
		{"after a success", concat(root(1), call(1, 2, "GET /cart", 0, 50*ms, false), call(1, 3, "GET /cart", 60*ms, 20*ms, false)), 0, 0, 2},
		{"another trace", concat(root(1), root(2), call(1, 2, "GET /cart", 0, 50*ms, true), call(2, 3, "GET /cart", 60*ms, 20*ms, false)), 0, 0, 2},
		{"later chunk, within PairWait", concat(root(1), call(1, 2, "GET /cart", 0, 50*ms, true), call(1, 3, "GET /cart", 60*ms, 20*ms, false)), 5 * time.Second, 1, 2},
		{"later chunk, beyond PairWait", concat(root(1), call(1, 2, "GET /cart", 0, 50*ms, true), call(1, 3, "GET /cart", 60*ms, 20*ms, false)), 20 * time.Second, 0, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := New(testOptions())
			if tc.gap == 0 {
				a.Apply(1, commitAt(0), traces(t, tc.spans...))
			} else {
				n := len(tc.spans) - 2 // the last call in a second chunk
				a.Apply(1, commitAt(0), traces(t, tc.spans[:n]...))
				a.Expire(commitAt(tc.gap))
				a.Apply(2, commitAt(tc.gap), traces(t, tc.spans[n:]...))
			}
			a.Expire(commitAt(tc.gap + time.Minute))
			var count, retried int64
			for _, w := range a.Flush().Windows {
				for k, r := range w.Edges {
					if k.Source.Service == "frontend" && k.Target.Service == "cart" {
						count += r.Count
						retried += r.Retried
					}
				}
			}
			if count != tc.count || retried != tc.retried {
				t.Errorf("calls %d retried %d, want %d and %d", count, retried, tc.count, tc.retried)
			}
		})
	}
}

func concat(parts ...any) []tspan {
	var out []tspan
	for _, p := range parts {
		switch v := p.(type) {
		case tspan:
			out = append(out, v)
		case []tspan:
			out = append(out, v...)
		}
	}
	return out
}
