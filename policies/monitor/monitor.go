// Package monitor runs the flow policies (package policies) against the
// flow graph: it loads the policies file and reloads it on demand, checks
// the graph of any range (the API's GET /policies, the flow graph's edge
// violations, the alert signal policy_violations), and every Interval
// evaluates the last Window, logging violations as they appear and
// exporting them as self-metrics.
package monitor

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/alerting"
	"github.com/flowscope/flowscope/policies"
	"github.com/flowscope/flowscope/store"
)

// Defaults of Options (DESIGN.md "Architecture rules (contract)").
const (
	DefaultInterval = 5 * time.Second
	DefaultWindow   = 5 * time.Minute
	// MaxDetailed bounds the violations of one evaluation whose first and
	// last seen times and exemplar are looked up (one latency query
	// each); the others carry their calls only.
	MaxDetailed = 500
)

// ErrNoPolicies is returned by Reload without a policies path.
var ErrNoPolicies = errors.New("no policies file configured (--policies)")

// Store is what the runtime reads. *store.DB implements it.
type Store interface {
	FlowGraph(ctx context.Context, start, end time.Time, q aggregate.GraphQuery) (*aggregate.Graph, error)
	Latency(ctx context.Context, start, end time.Time, q aggregate.LatencyQuery) (*aggregate.Latency, error)
	Architecture(ctx context.Context, name string) (store.Architecture, error)
}

// Options configures a Runtime.
type Options struct {
	// Path is the policies file or directory.
	Path       string
	Store      Store
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Interval and Window: the background evaluation checks the last
	// Window every Interval (defaults DefaultInterval, DefaultWindow).
	Interval, Window time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Status is the state of the policies file.
type Status struct {
	Path            string
	LoadedAt        time.Time
	LastReloadAt    time.Time
	LastReloadError string
}

// Violation is an observed edge violating a policy over a range.
type Violation struct {
	policies.Match
	// FirstSeen and LastSeen bound the 10-second windows with calls in the
	// range (zero when not looked up: beyond MaxDetailed).
	FirstSeen, LastSeen time.Time
	// Exemplar is a trace and span of such a call (hex); empty when none is kept.
	ExemplarTrace, ExemplarSpan string
}

// Runtime holds the policies in use. It is safe for concurrent use.
type Runtime struct {
	o       Options
	tracker *policies.Tracker

	mu     sync.RWMutex
	set    *policies.Set
	status Status

	violating *prometheus.GaugeVec
	evalSecs  prometheus.Gauge
}

// New loads the policies at o.Path; a file that does not load is an error.
func New(o Options) (*Runtime, error) {
	if o.Path == "" {
		return nil, ErrNoPolicies
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	set, err := policies.Load(o.Path)
	if err != nil {
		return nil, fmt.Errorf("policies %s: %w", o.Path, err)
	}
	now := o.Now().UTC()
	r := &Runtime{o: o, tracker: policies.NewTracker(), set: set, status: Status{Path: o.Path, LoadedAt: now, LastReloadAt: now}}
	r.violating = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "flowscope_policy_violations",
		Help: "Edges violating each flow policy over the last evaluation window (5 minutes).",
	}, []string{"policy"})
	r.evalSecs = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flowscope_policy_evaluation_seconds",
		Help: "Duration of the last background evaluation of the flow policies.",
	})
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{r.violating, r.evalSecs} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("policies: register metrics: %w", err)
			}
		}
	}
	for _, p := range set.Problems(r.declared(context.Background())) {
		o.Logger.Warn("flow policy problem", "problem", p)
	}
	o.Logger.Info("flow policies loaded", "path", o.Path, "policies", len(set.Policies))
	return r, nil
}

// Set returns the policies in use.
func (r *Runtime) Set() *policies.Set {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.set
}

// Status returns the state of the policies file.
func (r *Runtime) Status() Status {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.status
}

// Problems lists what the policies in use refer to that does not exist
// (an architecture not imported).
func (r *Runtime) Problems(ctx context.Context) []string {
	set := r.Set()
	if set == nil {
		return nil
	}
	return set.Problems(r.declared(ctx))
}

// Reload rereads the policies file. A file that does not load keeps the
// policies in use; the error says why (and is logged and kept in Status).
func (r *Runtime) Reload(ctx context.Context) error {
	set, err := policies.Load(r.o.Path)
	now := r.o.Now().UTC()
	r.mu.Lock()
	r.status.LastReloadAt = now
	if err != nil {
		r.status.LastReloadError = err.Error()
		r.mu.Unlock()
		r.o.Logger.Error("flow policies not reloaded: keeping the policies in use", "path", r.o.Path, "err", err)
		return fmt.Errorf("policies %s: %w", r.o.Path, err)
	}
	r.set, r.status.LoadedAt, r.status.LastReloadError = set, now, ""
	r.mu.Unlock()
	for _, p := range set.Problems(r.declared(ctx)) {
		r.o.Logger.Warn("flow policy problem", "problem", p)
	}
	r.o.Logger.Info("flow policies reloaded", "path", r.o.Path, "policies", len(set.Policies))
	return nil
}

// declared returns the declared calls of the stored architectures,
// memoized for one evaluation.
func (r *Runtime) declared(ctx context.Context) policies.Declared {
	type key struct {
		arch  string
		level aggregate.Level
	}
	memo := map[key]map[string]bool{}
	archs := map[string]*store.Architecture{}
	return func(arch string, level aggregate.Level) (map[string]bool, bool) {
		if m, ok := memo[key{arch, level}]; ok {
			return m, m != nil
		}
		a, ok := archs[arch]
		if !ok {
			got, err := r.o.Store.Architecture(ctx, arch)
			if err == nil {
				a = &got
			} else if !errors.Is(err, store.ErrNotFound) {
				r.o.Logger.Warn("flow policies: reading a declared architecture", "architecture", arch, "err", err)
			}
			archs[arch] = a
		}
		if a == nil {
			memo[key{arch, level}] = nil
			return nil, false
		}
		m := policies.DeclaredEdges(*a, level)
		memo[key{arch, level}] = m
		return m, true
	}
}

// Matches checks the policies against the flow graph of [start, end] at
// every level they use.
func (r *Runtime) Matches(ctx context.Context, start, end time.Time) ([]policies.Match, error) {
	set := r.Set()
	if set == nil || len(set.Policies) == 0 {
		return nil, nil
	}
	decl := r.declared(ctx)
	var out []policies.Match
	for _, level := range set.Levels() {
		g, err := r.o.Store.FlowGraph(ctx, start, end, aggregate.GraphQuery{Level: level})
		if err != nil {
			return nil, fmt.Errorf("flow graph at level %s: %w", level, err)
		}
		out = append(out, set.Check(level, graphEdges(g), decl)...)
	}
	return out, nil
}

// EdgeViolations returns, for the edges of a flow graph at level, the
// names of the policies each violates (sorted), keyed by
// source + "\x00" + target.
func (r *Runtime) EdgeViolations(ctx context.Context, level aggregate.Level, g *aggregate.Graph) map[string][]string {
	set := r.Set()
	if set == nil {
		return nil
	}
	matches := set.Check(level, graphEdges(g), r.declared(ctx))
	if len(matches) == 0 {
		return nil
	}
	out := make(map[string][]string, len(matches))
	for _, m := range matches {
		k := m.Source + "\x00" + m.Target
		out[k] = append(out[k], m.Policy)
	}
	for k, v := range out {
		slices.Sort(v)
		out[k] = slices.Compact(v)
	}
	return out
}

func graphEdges(g *aggregate.Graph) []policies.Edge {
	edges := make([]policies.Edge, 0, len(g.Edges))
	for _, e := range g.Edges {
		if e.Calls.Count == 0 {
			continue // declared only (compare), not observed
		}
		edges = append(edges, policies.Edge{Source: e.Source, Target: e.Target, Virtual: e.Virtual, Calls: e.Calls.Count})
	}
	return edges
}

// Violations checks the policies over [start, end] and looks up, for each
// violation (the first MaxDetailed), its first and last 10-second windows
// with calls and an exemplar call.
func (r *Runtime) Violations(ctx context.Context, start, end time.Time) ([]Violation, error) {
	matches, err := r.Matches(ctx, start, end)
	if err != nil {
		return nil, err
	}
	out := make([]Violation, len(matches))
	for i, m := range matches {
		out[i].Match = m
		if i >= MaxDetailed {
			continue
		}
		if err := r.detail(ctx, &out[i], start, end); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// detail looks up when a violating edge had calls in [start, end], and its
// newest kept call as exemplar.
func (r *Runtime) detail(ctx context.Context, v *Violation, start, end time.Time) error {
	step := seriesStep(start, end)
	lat, err := r.o.Store.Latency(ctx, start, end, aggregate.LatencyQuery{Source: v.Source, Target: v.Target, Level: v.Level, Step: step})
	if err != nil {
		return fmt.Errorf("calls %s → %s: %w", v.Source, v.Target, err)
	}
	for _, st := range lat.Series {
		if st.Rollup.Count == 0 {
			continue
		}
		t := time.Unix(st.Start, 0).UTC()
		if v.FirstSeen.IsZero() {
			v.FirstSeen = t
		}
		v.LastSeen = t.Add(time.Duration(step) * time.Second)
		if v.LastSeen.After(end) {
			v.LastSeen = end.UTC()
		}
	}
	var best *aggregate.Exemplar
	for _, list := range [][]aggregate.Exemplar{lat.Total.Spread, lat.Total.ErrorExemplars, lat.Total.Exemplars} {
		for i := range list {
			if best == nil || list[i].Time > best.Time {
				best = &list[i]
			}
		}
	}
	if best != nil {
		v.ExemplarTrace, v.ExemplarSpan = hex.EncodeToString(best.TraceID[:]), hex.EncodeToString(best.SpanID[:])
	}
	return nil
}

// seriesStep is the step (seconds, a multiple of 10) that splits [start,
// end] into at most 10,000 steps.
func seriesStep(start, end time.Time) int64 {
	secs := int64(end.Sub(start)/time.Second) + 1
	step := (secs/10_000 + 1) * 10
	return max(step, 10)
}

// Run evaluates the policies over the last Window every Interval until
// ctx ends: new violations are logged, and the self-metrics updated.
func (r *Runtime) Run(ctx context.Context) {
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	for {
		r.evaluate(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// evaluate is one background evaluation.
func (r *Runtime) evaluate(ctx context.Context) {
	began := time.Now()
	now := r.o.Now()
	matches, err := r.Matches(ctx, now.Add(-r.o.Window), now)
	if err != nil {
		if ctx.Err() == nil {
			r.o.Logger.Warn("flow policies not evaluated", "err", err)
		}
		return
	}
	for _, m := range r.tracker.Observe(now, matches) {
		r.o.Logger.Warn("flow policy violated", "policy", m.Policy, "level", m.Level.String(), "source", m.Source, "target", m.Target, "calls", m.Calls)
	}
	counts := map[string]float64{}
	if set := r.Set(); set != nil {
		for _, p := range set.Policies {
			counts[p.Name] = 0
		}
	}
	for _, m := range matches {
		counts[m.Policy]++
	}
	r.violating.Reset()
	for name, n := range counts {
		r.violating.WithLabelValues(name).Set(n)
	}
	r.evalSecs.Set(time.Since(began).Seconds())
}

// Seen returns when the background evaluation first and last saw a
// violation (ok false if it never did).
func (r *Runtime) Seen(m policies.Match) (first, last time.Time, ok bool) {
	return r.tracker.Seen(m.Policy, m.Level, m.Source, m.Target)
}

// maxAlertDetails bounds the violations whose exemplar PolicyViolations
// looks up (one latency query each): alert rules are evaluated every
// second.
const maxAlertDetails = 10

// PolicyViolations implements alerting.PolicySource: the violating edges
// over [start, end] with their calls (and, for the first few, an exemplar
// trace).
func (r *Runtime) PolicyViolations(ctx context.Context, start, end time.Time) ([]alerting.PolicyEdge, error) {
	matches, err := r.Matches(ctx, start, end)
	if err != nil {
		return nil, err
	}
	out := make([]alerting.PolicyEdge, len(matches))
	for i, m := range matches {
		out[i] = alerting.PolicyEdge{Policy: m.Policy, Source: m.Source, Target: m.Target, Calls: m.Calls}
		if i < maxAlertDetails {
			v := Violation{Match: m}
			if err := r.detail(ctx, &v, start, end); err != nil {
				return nil, err
			}
			out[i].Exemplar = v.ExemplarTrace
		}
	}
	return out, nil
}
