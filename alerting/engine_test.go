package alerting

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/alerting/rules"
	"github.com/flowscope/flowscope/store"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// ms is a latency series of n spans of d each (n/10 of them failed when
// errs is set).
func ms(n int64, d int) series { return series{count: n, dur: time.Duration(d) * time.Millisecond} }

func edge(src, dst string) [2]string { return [2]string{src, dst} }

// tick is one evaluation: the data at that second.
type tick struct {
	edges map[[2]string]series
	nodes map[string]series
}

func p99Rule(mod func(r *rules.Rule)) rules.Rule {
	r := rules.Rule{
		Name: "Slow", Select: rules.Selector{Source: "frontend", Target: "checkout"},
		Signal:    rules.Signal{Kind: rules.SignalQuantile, Quantile: 0.99, Name: "p99"},
		Threshold: float64(250 * time.Millisecond), Window: time.Minute,
		Labels: map[string]string{"severity": "page"},
	}
	if mod != nil {
		mod(&r)
	}
	return r
}

// fe is the data of the frontend → checkout edge only.
func fe(s series) tick { return tick{edges: map[[2]string]series{edge("frontend", "checkout"): s}} }

func TestSemantics(t *testing.T) {
	const fc = "source=frontend,target=checkout"
	tests := []struct {
		name  string
		rule  rules.Rule
		ticks []tick
		want  []string
		hooks []string
	}{
		{
			name:  "flapping without hysteresis fires and resolves on every crossing",
			rule:  p99Rule(nil),
			ticks: []tick{fe(ms(100, 300)), fe(ms(100, 200)), fe(ms(100, 300)), fe(ms(100, 200)), fe(ms(100, 200))},
			want: []string{"0s " + fc + " inactive>firing", "1s " + fc + " firing>inactive",
				"2s " + fc + " inactive>firing", "3s " + fc + " firing>inactive"},
			hooks: []string{fc + " firing", fc + " resolved", fc + " firing", fc + " resolved"},
		},
		{
			name: "hysteresis holds firing until the value is under recover_below",
			rule: p99Rule(func(r *rules.Rule) {
				r.Recover, r.HasRecover = float64(150*time.Millisecond), true
			}),
			ticks: []tick{fe(ms(100, 300)), fe(ms(100, 200)), fe(ms(100, 300)), fe(ms(100, 200)), fe(ms(100, 100)), fe(ms(100, 200))},
			want:  []string{"0s " + fc + " inactive>firing", "4s " + fc + " firing>inactive"},
			hooks: []string{fc + " firing", fc + " resolved"},
		},
		{
			name: "hysteresis: a value between the thresholds does not start an alert",
			rule: p99Rule(func(r *rules.Rule) {
				r.Recover, r.HasRecover = float64(150*time.Millisecond), true
			}),
			ticks: []tick{fe(ms(100, 200)), fe(ms(100, 240))},
		},
		{
			name:  "for: pending until it held long enough, then firing",
			rule:  p99Rule(func(r *rules.Rule) { r.For = 3 * time.Second }),
			ticks: []tick{fe(ms(100, 300)), fe(ms(100, 300)), fe(ms(100, 300)), fe(ms(100, 300)), fe(ms(100, 300))},
			want:  []string{"0s " + fc + " inactive>pending", "3s " + fc + " pending>firing"},
			hooks: []string{fc + " firing"},
		},
		{
			name:  "for: recovery while pending goes back to inactive without notifying",
			rule:  p99Rule(func(r *rules.Rule) { r.For = 3 * time.Second }),
			ticks: []tick{fe(ms(100, 300)), fe(ms(100, 300)), fe(ms(100, 200)), fe(ms(100, 300)), fe(ms(100, 300))},
			want:  []string{"0s " + fc + " inactive>pending", "2s " + fc + " pending>inactive", "3s " + fc + " inactive>pending"},
		},
		{
			name:  "keep_firing_for holds a recovered alert, then resolves",
			rule:  p99Rule(func(r *rules.Rule) { r.KeepFiringFor = 2 * time.Second }),
			ticks: []tick{fe(ms(100, 300)), fe(ms(100, 200)), fe(ms(100, 200)), fe(ms(100, 200)), fe(ms(100, 200))},
			want:  []string{"0s " + fc + " inactive>firing", "3s " + fc + " firing>inactive"},
			hooks: []string{fc + " firing", fc + " resolved"},
		},
		{
			name:  "keep_firing_for restarts when the breach comes back",
			rule:  p99Rule(func(r *rules.Rule) { r.KeepFiringFor = 2 * time.Second }),
			ticks: []tick{fe(ms(100, 300)), fe(ms(100, 200)), fe(ms(100, 300)), fe(ms(100, 200)), fe(ms(100, 200)), fe(ms(100, 200))},
			want:  []string{"0s " + fc + " inactive>firing", "5s " + fc + " firing>inactive"},
			hooks: []string{fc + " firing", fc + " resolved"},
		},
		{
			name:  "min_count: thin data neither starts nor ends an alert",
			rule:  p99Rule(func(r *rules.Rule) { r.MinCount = 20 }),
			ticks: []tick{fe(ms(5, 900)), fe(ms(100, 300)), fe(ms(5, 10)), fe(ms(19, 10)), fe(ms(20, 10))},
			want:  []string{"1s " + fc + " inactive>firing", "4s " + fc + " firing>inactive"},
			hooks: []string{fc + " firing", fc + " resolved"},
		},
		{
			name: "each edge: instances appear with their edges and retire when they vanish",
			rule: p99Rule(func(r *rules.Rule) { r.Select, r.Each = rules.Selector{Service: "frontend"}, rules.EachEdge }),
			ticks: []tick{
				{edges: map[[2]string]series{edge("frontend", "checkout"): ms(50, 300), edge("frontend", "cart"): ms(50, 100), edge("lb", "auth"): ms(50, 900)}},
				{edges: map[[2]string]series{edge("frontend", "checkout"): ms(50, 300), edge("frontend", "cart"): ms(50, 400)}},
				{edges: map[[2]string]series{edge("frontend", "cart"): ms(50, 400), edge("lb", "frontend"): ms(50, 500)}},
				{edges: map[[2]string]series{edge("lb", "frontend"): ms(50, 500)}},
			},
			want: []string{
				"0s " + fc + " inactive>firing",
				"1s source=frontend,target=cart inactive>firing",
				"2s source=lb,target=frontend inactive>firing",
				"2s " + fc + " firing>inactive",
				"3s source=frontend,target=cart firing>inactive",
			},
			hooks: []string{fc + " firing", "source=frontend,target=cart firing", "source=lb,target=frontend firing", fc + " resolved", "source=frontend,target=cart resolved"},
		},
		{
			name: "each service: one instance per service with requests",
			rule: rules.Rule{Name: "Errors", Each: rules.EachService, Signal: rules.Signal{Kind: rules.SignalErrorRate, Name: "error_rate"},
				Threshold: 0.05, Window: time.Minute},
			ticks: []tick{
				{nodes: map[string]series{"a": {count: 100, errors: 10, dur: time.Millisecond}, "b": {count: 100, errors: 1, dur: time.Millisecond}}},
				{nodes: map[string]series{"a": {count: 100, errors: 1, dur: time.Millisecond}, "b": {count: 100, errors: 6, dur: time.Millisecond}}},
			},
			want:  []string{"0s service=a inactive>firing", "1s service=a firing>inactive", "1s service=b inactive>firing"},
			hooks: []string{"service=a firing", "service=a resolved", "service=b firing"},
		},
		{
			name: "each operation: one instance per operation of the selected service",
			rule: p99Rule(func(r *rules.Rule) { r.Select, r.Each = rules.Selector{Service: "shop"}, rules.EachOperation }),
			ticks: []tick{
				{nodes: map[string]series{"shop": ms(10, 1), "shop/pay": ms(50, 300), "shop/list": ms(50, 10)}},
				{nodes: map[string]series{"shop": ms(10, 1), "shop/pay": ms(50, 300), "shop/list": ms(50, 900)}},
				{nodes: map[string]series{"shop": ms(10, 1), "shop/list": ms(50, 900)}},
			},
			want: []string{"0s service=shop,operation=pay inactive>firing", "1s service=shop,operation=list inactive>firing",
				"2s service=shop,operation=pay firing>inactive"},
			hooks: []string{"service=shop,operation=pay firing", "service=shop,operation=list firing", "service=shop,operation=pay resolved"},
		},
		{
			name: "below with recover_above: a rate that drops",
			rule: rules.Rule{Name: "Quiet", Select: rules.Selector{Service: "api"}, Signal: rules.Signal{Kind: rules.SignalRate, Name: "rate"},
				Below: true, Threshold: 1, Recover: 2, HasRecover: true, Window: time.Minute},
			// The fake window is 60 s: 120 spans are 2/s.
			ticks: []tick{
				{nodes: map[string]series{"api": ms(120, 1)}},
				{nodes: map[string]series{"api": ms(30, 1)}},
				{nodes: map[string]series{"api": ms(90, 1)}},
				{nodes: map[string]series{"api": ms(150, 1)}},
			},
			want:  []string{"1s service=api inactive>firing", "3s service=api firing>inactive"},
			hooks: []string{"service=api firing", "service=api resolved"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, st, nt := newFakeSource(), newMemStore(), &recNotifier{}
			clk := &clock{t: t0}
			e := New(src, st, Options{Now: clk.Now, Notifier: nt, Webhooks: 1})
			e.SetRules([]rules.Rule{tt.rule})
			if err := e.restore(); err != nil {
				t.Fatal(err)
			}
			for i, tk := range tt.ticks {
				clk.Set(t0.Add(time.Duration(i) * time.Second))
				src.set(tk.edges, tk.nodes)
				e.Evaluate(context.Background())
			}
			if got := st.transitions(t0); !slices.Equal(got, tt.want) {
				t.Errorf("transitions:\n got %q\nwant %q", got, tt.want)
			}
			if got := nt.hooks(); !slices.Equal(got, tt.hooks) {
				t.Errorf("webhooks:\n got %q\nwant %q", got, tt.hooks)
			}
			if h := e.Status().Rules[0]; h.Health != "ok" {
				t.Errorf("health %s: %s", h.Health, h.LastError)
			}
		})
	}
}

// TestInstanceDetails checks what an active instance and its transition
// carry: labels, value, threshold, exemplars, annotations and samples.
func TestInstanceDetails(t *testing.T) {
	src, st, nt := newFakeSource(), newMemStore(), &recNotifier{}
	clk := &clock{t: t0}
	e := New(src, st, Options{Now: clk.Now, Notifier: nt, ExternalURL: "http://ui.example/"})
	r := p99Rule(func(r *rules.Rule) {
		r.Annotations = map[string]string{"summary": "p99 of {{ .Target }} is {{ .Value }} (over {{ .Threshold }}, {{ .Labels.severity }})"}
	})
	e.SetRules([]rules.Rule{r})
	src.set(fe(ms(100, 300)).edges, nil)
	e.Evaluate(context.Background())
	as := e.Alerts()
	if len(as) != 1 {
		t.Fatalf("%d alerts, want 1", len(as))
	}
	a := as[0]
	wantLabels := map[string]string{"alertname": "Slow", "severity": "page", "source": "frontend", "target": "checkout"}
	if !mapsEqual(a.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", a.Labels, wantLabels)
	}
	if a.State != store.AlertFiring || a.Target != "frontend → checkout" || a.Threshold != float64(250*time.Millisecond) {
		t.Errorf("alert %+v", a)
	}
	if a.Value < float64(299*time.Millisecond) || a.Value > float64(302*time.Millisecond) {
		t.Errorf("value %v, want about 300ms", a.Value)
	}
	if len(a.Exemplars) != MaxExemplars || len(a.Exemplars[0]) != 32 {
		t.Errorf("exemplars %q", a.Exemplars)
	}
	if got := a.Annotations["summary"]; !strings.HasPrefix(got, "p99 of frontend → checkout is 30") || !strings.HasSuffix(got, "(over 250ms, page)") {
		t.Errorf("summary %q", got)
	}
	if got := a.Annotations["exemplar"]; got != "http://ui.example/#/trace/"+a.Exemplars[0] {
		t.Errorf("exemplar annotation %q", got)
	}
	if a.GeneratorURL != "http://ui.example/#/alerts?rule=Slow" {
		t.Errorf("generatorURL %q", a.GeneratorURL)
	}
	if len(a.Samples) != 1 || a.Samples[0].Time != t0 {
		t.Errorf("samples %v", a.Samples)
	}
	ev := st.events[0]
	if !slices.Equal(ev.Exemplars, a.Exemplars) || ev.Value != a.Value || ev.Threshold != a.Threshold || ev.Labels["alertname"] != "Slow" {
		t.Errorf("event %+v", ev)
	}
	// Alertmanager got the alert with endsAt = now + 4m, and again a
	// minute later, not before.
	for i := 1; i <= 61; i++ {
		clk.Set(t0.Add(time.Duration(i) * time.Second))
		e.Evaluate(context.Background())
	}
	if len(nt.am) != 2 || !nt.am[0][0].EndsAt.Equal(t0.Add(4*time.Minute)) || !nt.am[1][0].EndsAt.Equal(t0.Add(60*time.Second+4*time.Minute)) {
		t.Errorf("alertmanager sends %+v", nt.am)
	}
	if len(e.Alerts()[0].Samples) != 62 {
		t.Errorf("%d samples, want 62", len(e.Alerts()[0].Samples))
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestErrorExemplars checks that an error signal's exemplars are failed
// traces.
func TestErrorExemplars(t *testing.T) {
	src, st := newFakeSource(), newMemStore()
	e := New(src, st, Options{Now: func() time.Time { return t0 }})
	e.SetRules([]rules.Rule{{Name: "E", Select: rules.Selector{Source: "frontend", Target: "checkout"},
		Signal: rules.Signal{Kind: rules.SignalErrorRate, Name: "error_rate"}, Threshold: 0.1, Window: time.Minute}})
	src.set(map[[2]string]series{edge("frontend", "checkout"): {count: 10, errors: 5, dur: time.Millisecond}}, nil)
	e.Evaluate(context.Background())
	as := e.Alerts()
	if len(as) != 1 || len(as[0].Exemplars) != 1 || !strings.HasPrefix(as[0].Exemplars[0], "ee") {
		t.Fatalf("alerts %+v", as)
	}
	if ex := st.events[0].Exemplars; len(ex) != 1 || !strings.HasPrefix(ex[0], "ee") {
		t.Errorf("event exemplars %q", ex)
	}
}

// TestRestart checks that a new engine over the same store continues:
// pending keeps its start, firing stays firing without a second firing
// webhook once the first was delivered.
func TestRestart(t *testing.T) {
	src, st := newFakeSource(), newMemStore()
	clk := &clock{t: t0}
	rs := []rules.Rule{
		p99Rule(func(r *rules.Rule) { r.Name = "Pending"; r.For = time.Hour }),
		p99Rule(func(r *rules.Rule) { r.Name = "Firing" }),
	}
	nt1 := &recNotifier{}
	e1 := New(src, st, Options{Now: clk.Now, Notifier: nt1, Webhooks: 1})
	e1.SetRules(rs)
	src.set(fe(ms(100, 300)).edges, nil)
	e1.Evaluate(context.Background())
	// The webhook delivered the firing notification.
	for _, a := range nt1.webhooks {
		e1.OnDelivery(deliverySent(a.Rule, a.Key))
	}
	clk.Set(t0.Add(time.Second))
	e1.Evaluate(context.Background()) // saves the notified mark

	nt2 := &recNotifier{}
	e2 := New(src, st, Options{Now: clk.Now, Notifier: nt2, Webhooks: 1})
	e2.SetRules(rs)
	if err := e2.restore(); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(5 * time.Second))
	e2.Evaluate(context.Background())
	as := e2.Alerts()
	if len(as) != 2 {
		t.Fatalf("alerts after restart: %+v", as)
	}
	for _, a := range as {
		switch a.Rule {
		case "Pending":
			if a.State != store.AlertPending || !a.ActiveAt.Equal(t0) {
				t.Errorf("pending after restart: %s since %v, want pending since %v", a.State, a.ActiveAt, t0)
			}
		case "Firing":
			if a.State != store.AlertFiring || !a.FiredAt.Equal(t0) {
				t.Errorf("firing after restart: %s since %v", a.State, a.FiredAt)
			}
		}
	}
	if len(nt2.webhooks) != 0 {
		t.Errorf("webhooks after restart: %+v", nt2.webhooks)
	}
	if len(nt2.am) != 1 {
		t.Errorf("alertmanager resends after restart: %d, want 1", len(nt2.am))
	}
	if got := st.transitions(t0); len(got) != 2 {
		t.Errorf("transitions %q, want only the two of the first engine", got)
	}
}

// TestSaveFailureRetried checks that a failed save keeps its changes for
// the next cycle.
func TestSaveFailureRetried(t *testing.T) {
	src, st := newFakeSource(), newMemStore()
	clk := &clock{t: t0}
	e := New(src, st, Options{Now: clk.Now})
	e.SetRules([]rules.Rule{p99Rule(nil)})
	src.set(fe(ms(100, 300)).edges, nil)
	st.fail = errors.New("disk full")
	e.Evaluate(context.Background())
	st.fail = nil
	clk.Set(t0.Add(time.Second))
	e.Evaluate(context.Background())
	if got := st.transitions(t0); len(got) != 1 {
		t.Errorf("transitions %q", got)
	}
	if len(st.states) != 1 {
		t.Errorf("states %v", st.states)
	}
}

// TestRuleErrorKeepsState checks that a failing data source marks the rule
// unhealthy and changes no state.
func TestRuleErrorKeepsState(t *testing.T) {
	src, st := newFakeSource(), newMemStore()
	clk := &clock{t: t0}
	e := New(src, st, Options{Now: clk.Now})
	e.SetRules([]rules.Rule{p99Rule(nil)})
	src.set(fe(ms(100, 300)).edges, nil)
	e.Evaluate(context.Background())
	src.err = errors.New("store closed")
	clk.Set(t0.Add(time.Second))
	e.Evaluate(context.Background())
	s := e.Status().Rules[0]
	if s.Health != "error" || s.LastError != "store closed" || s.Firing != 1 {
		t.Errorf("status %+v", s)
	}
}

// TestSyntheticWithoutSource checks the place left for the synthetic and
// policy signals.
func TestSyntheticWithoutSource(t *testing.T) {
	e := New(newFakeSource(), newMemStore(), Options{Now: func() time.Time { return t0 }})
	e.SetRules([]rules.Rule{{Name: "S", Select: rules.Selector{Synthetic: "journey"},
		Signal: rules.Signal{Kind: rules.SignalSyntheticFailureRate, Name: "synthetic_failure_rate"}, Threshold: 0.1, Window: time.Minute}})
	e.Evaluate(context.Background())
	if s := e.Status().Rules[0]; s.Health != "error" || !strings.Contains(s.LastError, "no source for signal synthetic_failure_rate") {
		t.Errorf("status %+v", s)
	}
}

// TestRemovedRuleResolves checks that reloading without a rule resolves
// its firing instances.
func TestRemovedRuleResolves(t *testing.T) {
	src, st, nt := newFakeSource(), newMemStore(), &recNotifier{}
	clk := &clock{t: t0}
	e := New(src, st, Options{Now: clk.Now, Notifier: nt})
	e.SetRules([]rules.Rule{p99Rule(nil)})
	src.set(fe(ms(100, 300)).edges, nil)
	e.Evaluate(context.Background())
	e.SetRules(nil)
	clk.Set(t0.Add(time.Second))
	e.Evaluate(context.Background())
	if len(e.Alerts()) != 0 || len(st.states) != 0 {
		t.Errorf("alerts %v states %v", e.Alerts(), st.states)
	}
	if got := nt.hooks(); len(got) != 2 || !strings.HasSuffix(got[1], "resolved") {
		t.Errorf("webhooks %q", got)
	}
}

// fakeExtra serves synthetic-check observations.
type fakeExtra struct{ obs []Observation }

func (f *fakeExtra) Observe(ctx context.Context, r *rules.Rule, start, end time.Time) ([]Observation, error) {
	return f.obs, nil
}

// TestExtraSignals checks that the synthetic signals are evaluated through
// ExtraSignals like the rollup signals.
func TestExtraSignals(t *testing.T) {
	st, nt := newMemStore(), &recNotifier{}
	clk := &clock{t: t0}
	ex := &fakeExtra{obs: []Observation{{Labels: map[string]string{"check": "journey"}, Count: 10, Value: 0.5, Exemplars: []string{"abc"}}}}
	e := New(newFakeSource(), st, Options{Now: clk.Now, Notifier: nt, Extra: ex})
	e.SetRules([]rules.Rule{{Name: "S", Select: rules.Selector{Synthetic: "journey"},
		Signal: rules.Signal{Kind: rules.SignalSyntheticFailureRate, Name: "synthetic_failure_rate"}, Threshold: 0.1, Window: time.Minute}})
	e.Evaluate(context.Background())
	ex.obs[0].Value = 0
	clk.Set(t0.Add(time.Second))
	e.Evaluate(context.Background())
	want := []string{"0s check=journey inactive>firing", "1s check=journey firing>inactive"}
	if got := st.transitions(t0); !slices.Equal(got, want) {
		t.Errorf("transitions %q, want %q", got, want)
	}
	if ev := st.events[0]; !slices.Equal(ev.Exemplars, []string{"abc"}) || ev.Labels["check"] != "journey" {
		t.Errorf("event %+v", ev)
	}
}
