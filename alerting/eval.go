package alerting

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/alerting/notify"
	"github.com/flowscope/flowscope/alerting/rules"
	"github.com/flowscope/flowscope/store"
)

// MaxExemplars is how many exemplar trace IDs a transition keeps.
const MaxExemplars = 5

// Evaluate runs one evaluation cycle at the engine's current time: every
// rule is evaluated, transitions are saved and notifications queued. It
// returns when the cycle is done; Run calls it every Interval.
func (e *Engine) Evaluate(ctx context.Context) {
	e.evalMu.Lock()
	defer e.evalMu.Unlock()
	now := e.opts.Now()
	started := time.Now()
	e.cycles++
	c := &cycle{e: e, id: e.cycles, ctx: ctx, now: now, graphs: map[time.Duration]*graphData{}, lats: map[latKey]*latData{}, ops: map[string]opsData{}, extra: map[string][]Observation{}}

	e.mu.Lock()
	set := slices.Clone(e.set)
	retired := e.retired
	e.retired = nil
	e.mu.Unlock()

	for _, in := range retired {
		c.resolveRetired(in)
	}
	for _, rs := range set {
		c.evalRule(rs)
	}
	c.fillErrorExemplars()
	c.save()
	c.notify()
	e.opts.Metrics.observeCycle(time.Since(started), e)
}

// cycle is the state of one evaluation: the data read so far, shared by
// the rules, and what the rules changed.
type cycle struct {
	e      *Engine
	id     uint64 // Engine.cycles
	ctx    context.Context
	now    time.Time
	graphs map[time.Duration]*graphData
	lats   map[latKey]*latData
	ops    map[string]opsData
	extra  map[string][]Observation // ExtraSignals results by rule

	events   []store.AlertEvent
	dirty    []store.AlertStateKey
	webhooks []notify.Alert
	amAlerts []notify.Alert
	// needErrEx are instances that became active on an error signal and
	// want failed traces as exemplars.
	needErrEx []errExemplarWant
}

type errExemplarWant struct {
	in      *instance
	service string
	from    time.Time
	event   int // index in events to update
}

// graphData is the service-level flow graph of one window, with values
// computed on demand and shared by every rule.
type graphData struct {
	g        *aggregate.Graph
	err      error
	from     time.Time
	seconds  float64
	edgeSel  []selection
	edgeKeys []string
	nodeSel  []selection
	nodeKeys []string
	// edgeQ and nodeQ cache quantile values by quantile, per edge or node
	// (NaN: not computed yet; -1: no timed span).
	edgeQ map[float64][]float64
	nodeQ map[float64][]float64
}

type latKey struct {
	window             time.Duration
	service, operation string
	kind               aggregate.KindFilter
}

type latData struct {
	lat *aggregate.Latency
	err error
	q   map[float64]float64
}

type opsData struct {
	ops []store.Operation
	err error
}

// rangeOf is the query range of a window ending now and the seconds of
// data it holds (from the aligned start to now), for rates.
func (c *cycle) rangeOf(window time.Duration) (time.Time, time.Time, float64) {
	start := c.now.Add(-window)
	aligned := start.Unix() - start.Unix()%10
	return start, c.now, c.now.Sub(time.Unix(aligned, 0)).Seconds()
}

func (c *cycle) graph(window time.Duration) *graphData {
	if gd := c.graphs[window]; gd != nil {
		return gd
	}
	start, end, secs := c.rangeOf(window)
	g, err := c.e.src.FlowGraph(c.ctx, start, end, aggregate.GraphQuery{Level: aggregate.LevelService})
	gd := &graphData{g: g, err: err, from: start, seconds: secs, edgeQ: map[float64][]float64{}, nodeQ: map[float64][]float64{}}
	if err == nil {
		gd.edgeSel = make([]selection, len(g.Edges))
		gd.edgeKeys = make([]string, len(g.Edges))
		for i, ed := range g.Edges {
			gd.edgeSel[i] = selection{source: ed.Source, target: ed.Target}
			gd.edgeKeys[i] = gd.edgeSel[i].key()
		}
		gd.nodeSel = make([]selection, len(g.Nodes))
		gd.nodeKeys = make([]string, len(g.Nodes))
		for i, n := range g.Nodes {
			gd.nodeSel[i] = selection{service: n.ID}
			gd.nodeKeys[i] = gd.nodeSel[i].key()
		}
	}
	c.graphs[window] = gd
	return gd
}

func (c *cycle) latency(k latKey) *latData {
	if ld := c.lats[k]; ld != nil {
		return ld
	}
	start, end, _ := c.rangeOf(k.window)
	lat, err := c.e.src.Latency(c.ctx, start, end, aggregate.LatencyQuery{Service: k.service, Operation: k.operation, Kind: k.kind, Level: aggregate.LevelService})
	ld := &latData{lat: lat, err: err, q: map[float64]float64{}}
	c.lats[k] = ld
	return ld
}

func (c *cycle) operations(service string) opsData {
	if od, ok := c.ops[service]; ok {
		return od
	}
	ops, err := c.e.src.Operations(c.ctx, service)
	od := opsData{ops: ops, err: err}
	c.ops[service] = od
	return od
}

// obs is one series' data for a rule.
type obs struct {
	sel    selection
	key    string
	count  int64
	value  float64
	has    bool // value is known (a quantile needs timed spans)
	rollup *aggregate.Rollup
	extra  []string // exemplars of an ExtraSignals observation
	// errService is the service whose failed traces are the exemplars of
	// an error signal.
	errService string
}

// quantileOf returns quantile q (a fraction) of h in nanoseconds, as the
// latency API computes it (nearest rank); false without timed spans.
func quantileOf(h *hdr.PackedHistogram, q float64) (float64, bool) {
	if h == nil || h.TotalCount() == 0 {
		return 0, false
	}
	return float64(h.ValueAtPercentile(aggregate.NearestRankPercentile(q, h.TotalCount()))), true
}

// value computes a rollup signal. cache, when not nil, memoizes quantiles
// (NaN: not computed; -1: none).
func value(r *rules.Rule, ru *aggregate.Rollup, seconds float64, cache *float64) (float64, bool) {
	switch r.Signal.Kind {
	case rules.SignalQuantile:
		if cache != nil && !math.IsNaN(*cache) {
			return *cache, *cache >= 0
		}
		v, ok := quantileOf(ru.Hist, r.Signal.Quantile)
		if cache != nil {
			if ok {
				*cache = v
			} else {
				*cache = -1
			}
		}
		return v, ok
	case rules.SignalErrorRate:
		if ru.Count == 0 {
			return 0, false
		}
		return float64(ru.Errors) / float64(ru.Count), true
	case rules.SignalRate:
		if seconds <= 0 {
			return 0, false
		}
		return float64(ru.Count) / seconds, true
	case rules.SignalCount:
		return float64(ru.Count), true
	}
	return 0, false
}

// qcache returns the per-series quantile cache slice for q.
func qcache(m map[float64][]float64, q float64, n int) []float64 {
	s := m[q]
	if s == nil {
		s = make([]float64, n)
		for i := range s {
			s[i] = math.NaN()
		}
		m[q] = s
	}
	return s
}

// kindFilter maps a selector's kind to the latency API's filter.
func kindFilter(kind string) aggregate.KindFilter {
	switch kind {
	case "client":
		return aggregate.KindClient
	case "internal":
		return aggregate.KindInternal
	case "all":
		return aggregate.KindAll
	}
	return aggregate.KindServer
}

// observe calls fn with every series of rule r, or returns why the rule
// could not be evaluated.
func (c *cycle) observe(r *rules.Rule, fn func(o *obs)) error {
	sel := r.Select
	switch r.Signal.Kind {
	case rules.SignalSyntheticFailureRate, rules.SignalSyntheticP99, rules.SignalPolicyViolations:
		if c.e.opts.Extra == nil {
			return fmt.Errorf("no source for signal %s: nothing produces it in this collector yet", r.Signal.Name)
		}
		list, ok := c.extra[r.Name]
		if !ok {
			start, end, _ := c.rangeOf(r.Window)
			var err error
			if list, err = c.e.opts.Extra.Observe(c.ctx, r, start, end); err != nil {
				return err
			}
			c.extra[r.Name] = list
		}
		for _, x := range list {
			s := selectionFromLabels(x.Labels)
			o := obs{sel: s, key: x.Key, count: x.Count, value: x.Value, has: true, extra: x.Exemplars}
			if o.key == "" {
				o.key = s.key()
			}
			fn(&o)
		}
		return nil
	}
	switch {
	case r.Each == rules.EachEdge || (r.Each == rules.EachNone && sel.Source != ""):
		gd := c.graph(r.Window)
		if gd.err != nil {
			return gd.err
		}
		var qs []float64
		if r.Signal.Kind == rules.SignalQuantile {
			qs = qcache(gd.edgeQ, r.Signal.Quantile, len(gd.g.Edges))
		}
		o := new(obs) // one per rule: fn does not keep it
		for i := range gd.g.Edges {
			ed := &gd.g.Edges[i]
			switch {
			case sel.Service != "" && !nodeMatches(ed.Source, sel.Service) && !nodeMatches(ed.Target, sel.Service):
				continue
			case sel.Source != "" && !nodeMatches(ed.Source, sel.Source):
				continue
			case sel.Target != "" && !nodeMatches(ed.Target, sel.Target):
				continue
			}
			var cache *float64
			if qs != nil {
				cache = &qs[i]
			}
			*o = obs{sel: gd.edgeSel[i], key: gd.edgeKeys[i], count: ed.Calls.Count, rollup: &ed.Calls, errService: ed.Target}
			o.value, o.has = value(r, &ed.Calls, gd.seconds, cache)
			fn(o)
		}
		return nil
	case r.Each == rules.EachService || (r.Each == rules.EachNone && sel.Operation == "" && sel.Kind == ""):
		// A service's requests: its SERVER and CONSUMER spans, as the
		// map's nodes and the latency API's default kind.
		gd := c.graph(r.Window)
		if gd.err != nil {
			return gd.err
		}
		var qs []float64
		if r.Signal.Kind == rules.SignalQuantile {
			qs = qcache(gd.nodeQ, r.Signal.Quantile, len(gd.g.Nodes))
		}
		o := new(obs) // one per rule: fn does not keep it
		for i := range gd.g.Nodes {
			n := &gd.g.Nodes[i]
			if n.Virtual || (sel.Service != "" && !nodeMatches(n.ID, sel.Service)) {
				continue
			}
			var cache *float64
			if qs != nil {
				cache = &qs[i]
			}
			*o = obs{sel: gd.nodeSel[i], key: gd.nodeKeys[i], count: n.Requests.Count, rollup: &n.Requests, errService: n.ID}
			o.value, o.has = value(r, &n.Requests, gd.seconds, cache)
			fn(o)
		}
		return nil
	case r.Each == rules.EachOperation:
		gd := c.graph(r.Window)
		if gd.err != nil {
			return gd.err
		}
		kf := kindFilter(sel.Kind)
		for _, n := range gd.g.Nodes {
			if n.Virtual || (sel.Service != "" && !nodeMatches(n.ID, sel.Service)) {
				continue
			}
			od := c.operations(n.ID)
			if od.err != nil {
				return od.err
			}
			seen := map[string]bool{}
			for _, op := range od.ops {
				if !kf.Match(int32(op.Kind)) || seen[op.Name] || (sel.Operation != "" && op.Name != sel.Operation) {
					continue
				}
				seen[op.Name] = true
				if err := c.observeLatency(r, n.ID, op.Name, kf, fn); err != nil {
					return err
				}
			}
		}
		return nil
	default:
		return c.observeLatency(r, sel.Service, sel.Operation, kindFilter(sel.Kind), fn)
	}
}

// observeLatency observes the latency distribution of a service's spans
// (of one operation when operation is set).
func (c *cycle) observeLatency(r *rules.Rule, service, operation string, kf aggregate.KindFilter, fn func(o *obs)) error {
	ld := c.latency(latKey{window: r.Window, service: service, operation: operation, kind: kf})
	if ld.err != nil {
		return ld.err
	}
	_, _, secs := c.rangeOf(r.Window)
	o := obs{sel: selection{service: service, operation: operation}, errService: service}
	o.key = o.sel.key()
	if ld.lat != nil {
		o.rollup = &ld.lat.Total
		o.count = ld.lat.Total.Count
		var cache *float64
		if r.Signal.Kind == rules.SignalQuantile {
			v, ok := ld.q[r.Signal.Quantile]
			if !ok {
				v = math.NaN()
			}
			cache = &v
			defer func() { ld.q[r.Signal.Quantile] = v }()
		}
		o.value, o.has = value(r, &ld.lat.Total, secs, cache)
	}
	fn(&o)
	return nil
}

// prefetch reads, without the state lock, the data observe will need for
// r: the window's flow graph for edge and service rules (the common case,
// read once per window and cycle); the other selections take a dry pass of
// observe.
func (c *cycle) prefetch(r *rules.Rule) error {
	switch r.Signal.Kind {
	case rules.SignalQuantile, rules.SignalErrorRate, rules.SignalRate, rules.SignalCount:
		sel := r.Select
		if r.Each == rules.EachEdge || r.Each == rules.EachService ||
			(r.Each == rules.EachNone && (sel.Source != "" || (sel.Operation == "" && sel.Kind == ""))) {
			return c.graph(r.Window).err
		}
	}
	return c.observe(r, func(*obs) {})
}

// evalRule evaluates one rule and applies its transitions.
func (c *cycle) evalRule(rs *ruleState) {
	r := &rs.rule
	started := time.Now()
	// A first pass reads the rule's data (cached for the second pass and
	// for the other rules) without the state lock, so that API readers
	// and deliveries never wait for the store; the lock is held only to
	// apply transitions.
	obsErr := c.prefetch(r)
	c.e.mu.Lock()
	if obsErr == nil {
		obsErr = c.observe(r, func(o *obs) { c.step(rs, o) })
	}
	if obsErr == nil {
		for key, in := range rs.active {
			if in.seen != c.id {
				c.step(rs, &obs{sel: in.sel, key: key}) // vanished: no span in the window
			}
		}
		rs.health, rs.lastErr = "ok", ""
	} else {
		rs.health, rs.lastErr = "error", obsErr.Error()
	}
	rs.lastEval = c.now
	rs.lastDur = time.Since(started)
	c.e.mu.Unlock()
	if obsErr != nil {
		c.e.opts.Metrics.ruleFailed()
		c.e.logger.Debug("rule evaluation failed", "rule", r.Name, "err", obsErr)
	}
}

// step applies one observation to the rule's instance of its key. Called
// with e.mu held.
func (c *cycle) step(rs *ruleState, o *obs) {
	r := &rs.rule
	in := rs.active[o.key]
	if in != nil {
		in.seen = c.id
	}
	if in == nil {
		// Inactive: only a breach with enough data matters.
		if o.count == 0 || o.count < r.MinCount || !o.has || !r.Breaches(o.value) {
			return
		}
		in = &instance{rule: r.Name, key: o.key, sel: o.sel, target: o.sel.display(), threshold: r.Threshold}
		in.labels = instanceLabels(r.Name, r.Labels, o.sel.labels())
		in.value = o.value
		in.activeAt = c.now
		in.exemplars = c.exemplars(r, o, in)
		in.seen = c.id
		rs.active[o.key] = in
		if r.For <= 0 {
			c.fire(rs, in, store.AlertInactive)
		} else {
			in.state = store.AlertPending
			c.transition(rs, in, store.AlertInactive, store.AlertPending)
		}
		in.addSample(c.now, o.value)
		return
	}
	if o.count == 0 {
		// The series vanished from the window: it counts as recovered.
		c.recover(rs, in)
		return
	}
	if o.count < r.MinCount || !o.has {
		return // thin data: no decision
	}
	in.value = o.value
	in.threshold = r.Threshold
	in.addSample(c.now, o.value)
	if r.Recovered(o.value) {
		c.recover(rs, in)
		return
	}
	if !in.recoveredAt.IsZero() {
		in.recoveredAt = time.Time{}
		c.dirty = append(c.dirty, store.AlertStateKey{Rule: in.rule, Key: in.key})
	}
	if in.state == store.AlertPending && c.now.Sub(in.activeAt) >= r.For {
		in.exemplars = c.exemplars(r, o, in)
		c.fire(rs, in, store.AlertPending)
	}
}

// recover handles a recovered (or vanished) observation of an active
// instance. Called with e.mu held.
func (c *cycle) recover(rs *ruleState, in *instance) {
	r := &rs.rule
	if in.state == store.AlertPending {
		delete(rs.active, in.key)
		c.transition(rs, in, store.AlertPending, store.AlertInactive)
		return
	}
	if r.KeepFiringFor > 0 {
		if in.recoveredAt.IsZero() {
			in.recoveredAt = c.now
			c.dirty = append(c.dirty, store.AlertStateKey{Rule: in.rule, Key: in.key})
		}
		if c.now.Sub(in.recoveredAt) < r.KeepFiringFor {
			return
		}
	}
	delete(rs.active, in.key)
	c.resolve(rs, in)
}

// fire moves in to firing.
func (c *cycle) fire(rs *ruleState, in *instance, from string) {
	in.state = store.AlertFiring
	in.firedAt = c.now
	in.notified, in.webhookOK = "", 0
	c.transition(rs, in, from, store.AlertFiring)
	in.annotations = c.e.annotate(&rs.rule, in)
	a := c.e.notifyAlert(in, "firing", time.Time{})
	c.webhooks = append(c.webhooks, a)
}

// resolve records the resolution of a firing instance and notifies it.
func (c *cycle) resolve(rs *ruleState, in *instance) {
	c.transition(rs, in, store.AlertFiring, store.AlertInactive)
	in.annotations = c.e.annotate(&rs.rule, in)
	a := c.e.notifyAlert(in, "resolved", c.now)
	c.webhooks = append(c.webhooks, a)
	c.amAlerts = append(c.amAlerts, a)
}

// resolveRetired ends an instance of a rule removed by a reload.
func (c *cycle) resolveRetired(in *instance) {
	ev := store.AlertEvent{Time: c.now, Kind: store.AlertEventTransition, Rule: in.rule, Key: in.key,
		Labels: maps.Clone(in.labels), From: in.state, To: store.AlertInactive, Value: in.value, Threshold: in.threshold,
		Exemplars: slices.Clone(in.exemplars), Error: "rule removed"}
	c.events = append(c.events, ev)
	c.dirty = append(c.dirty, store.AlertStateKey{Rule: in.rule, Key: in.key})
	if in.state == store.AlertFiring {
		a := c.e.notifyAlert(in, "resolved", c.now)
		c.webhooks = append(c.webhooks, a)
		c.amAlerts = append(c.amAlerts, a)
	}
}

// transition records a state change and the instance's new stored state.
func (c *cycle) transition(rs *ruleState, in *instance, from, to string) {
	c.events = append(c.events, store.AlertEvent{
		Time: c.now, Kind: store.AlertEventTransition, Rule: in.rule, Key: in.key,
		Labels: maps.Clone(in.labels), From: from, To: to, Value: in.value, Threshold: in.threshold,
		Exemplars: slices.Clone(in.exemplars),
	})
	c.dirty = append(c.dirty, store.AlertStateKey{Rule: in.rule, Key: in.key})
	c.e.opts.Metrics.transition(to)
}

// exemplars returns the exemplar trace IDs of an observation: the slowest
// spans of the window (latency, rate and count signals) or, for error
// signals, failed traces, looked up after the cycle's rules ran.
func (c *cycle) exemplars(r *rules.Rule, o *obs, in *instance) []string {
	if o.extra != nil {
		return slices.Clone(o.extra[:min(len(o.extra), MaxExemplars)])
	}
	var ids []string
	if o.rollup != nil {
		for _, ex := range o.rollup.Exemplars {
			id := hex.EncodeToString(ex.TraceID[:])
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
			if len(ids) == MaxExemplars {
				break
			}
		}
	}
	if r.Signal.Kind == rules.SignalErrorRate && o.errService != "" {
		start, _, _ := c.rangeOf(r.Window)
		c.needErrEx = append(c.needErrEx, errExemplarWant{in: in, service: o.errService, from: start, event: len(c.events)})
	}
	return ids
}

// fillErrorExemplars looks up failed traces for the instances of error
// signals that became active in this cycle, replacing their exemplars.
func (c *cycle) fillErrorExemplars() {
	type query struct {
		service string
		from    time.Time
	}
	found := map[query][]string{} // the cycle's lookups: many rules share a service and window
	for _, w := range c.needErrEx {
		name := w.service
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			name = name[i+1:]
		}
		q := query{name, w.from}
		ids, ok := found[q]
		if !ok {
			sums, err := c.e.src.FindTraces(c.ctx, store.TraceQuery{Service: name, Start: w.from, End: c.now, Limit: 50})
			if err == nil {
				for _, s := range sums {
					if s.ErrorCount > 0 {
						ids = append(ids, s.TraceID.String())
						if len(ids) == MaxExemplars {
							break
						}
					}
				}
			}
			found[q] = ids
		}
		if len(ids) == 0 {
			continue
		}
		c.e.mu.Lock()
		w.in.exemplars = slices.Clone(ids)
		if w.event < len(c.events) && c.events[w.event].Key == w.in.key && c.events[w.event].Rule == w.in.rule {
			c.events[w.event].Exemplars = slices.Clone(ids)
		}
		if w.in.annotations != nil && len(ids) > 0 {
			w.in.annotations["exemplar"] = c.e.traceURL(ids[0])
		}
		c.e.mu.Unlock()
	}
}

// addSample appends a value to the instance's recent values.
func (in *instance) addSample(t time.Time, v float64) {
	if len(in.samples) >= MaxSamples {
		in.samples = slices.Delete(in.samples, 0, len(in.samples)-MaxSamples+1)
	}
	in.samples = append(in.samples, Sample{Time: t, Value: v})
}

// save commits the cycle's changes, with what earlier failed saves left,
// in one store transaction: the current state of every instance that
// changed (deleted when no longer active) and the events.
func (c *cycle) save() {
	e := c.e
	e.mu.Lock()
	for _, k := range c.dirty {
		e.unsaved.mark(k)
	}
	b := e.unsaved
	e.unsaved = saveBatch{}
	var upserts []store.AlertState
	var deletes []store.AlertStateKey
	for k := range b.dirty {
		if rs := e.byName[k.Rule]; rs != nil && rs.active[k.Key] != nil {
			upserts = append(upserts, rs.active[k.Key].persisted())
		} else {
			deletes = append(deletes, k)
		}
	}
	e.mu.Unlock()
	events := append(b.events, c.events...)
	if len(upserts) == 0 && len(deletes) == 0 && len(events) == 0 {
		return
	}
	if err := e.st.SaveAlerts(upserts, deletes, events); err != nil {
		e.logger.Error("alert state not saved, retrying next cycle", "err", err)
		e.opts.Metrics.saveFailed()
		e.mu.Lock()
		for k := range b.dirty {
			e.unsaved.mark(k)
		}
		// Keep the older events first.
		e.unsaved.events = append(events, e.unsaved.events...)
		e.unsaved.trim()
		e.mu.Unlock()
	}
}

// notify hands the cycle's notifications to the notifier: webhooks for
// changes, and Alertmanager for changes plus the periodic resend of every
// firing instance.
func (c *cycle) notify() {
	e := c.e
	if e.opts.Notifier == nil {
		return
	}
	e.mu.Lock()
	am := c.amAlerts
	for _, rs := range e.set {
		for _, in := range rs.active {
			if in.state != store.AlertFiring || (!in.lastAMSend.IsZero() && c.now.Sub(in.lastAMSend) < e.opts.ResendInterval) {
				continue
			}
			in.lastAMSend = c.now
			in.annotations = e.annotate(&rs.rule, in)
			a := e.notifyAlert(in, "firing", time.Time{})
			a.EndsAt = c.now.Add(e.opts.ResolveTimeout)
			am = append(am, a)
		}
	}
	e.mu.Unlock()
	for _, a := range c.webhooks {
		e.opts.Notifier.Webhook(a)
	}
	if len(am) > 0 {
		e.opts.Notifier.Alertmanager(am)
	}
}

// notifyAlert builds the notification of an instance.
func (e *Engine) notifyAlert(in *instance, status string, endsAt time.Time) notify.Alert {
	return notify.Alert{
		Labels: maps.Clone(in.labels), Annotations: maps.Clone(in.annotations),
		StartsAt: in.activeAt, EndsAt: endsAt, GeneratorURL: e.ruleURL(in.rule),
		Status: status, Rule: in.rule, Key: in.key,
	}
}
