package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/alerting/notify"
	"github.com/flowscope/flowscope/alerting/rules"
	"github.com/flowscope/flowscope/store"
)

// Source is the data rules are evaluated on. *store.DB implements it.
type Source interface {
	// FlowGraph returns the flow graph over [start, end] (see
	// store.DB.FlowGraph).
	FlowGraph(ctx context.Context, start, end time.Time, q aggregate.GraphQuery) (*aggregate.Graph, error)
	// Latency returns the latency distribution selected by q over
	// [start, end] (see store.DB.Latency).
	Latency(ctx context.Context, start, end time.Time, q aggregate.LatencyQuery) (*aggregate.Latency, error)
	// Operations lists the span names and kinds of service.
	Operations(ctx context.Context, service string) ([]store.Operation, error)
	// FindTraces searches traces; used for the exemplars of error signals.
	FindTraces(ctx context.Context, q store.TraceQuery) ([]store.TraceSummary, error)
}

// StateStore keeps active alert states and the alert history. *store.DB
// implements it.
type StateStore interface {
	SaveAlerts(upserts []store.AlertState, deletes []store.AlertStateKey, events []store.AlertEvent) error
	AlertStates() ([]store.AlertState, error)
	AlertHistory(ctx context.Context, q store.AlertHistoryQuery) ([]store.AlertEvent, error)
	AppendAlertEvents(events []store.AlertEvent) error
}

// Notifier delivers notifications without blocking. *notify.Notifier
// implements it.
type Notifier interface {
	// Alertmanager queues alerts for every Alertmanager.
	Alertmanager(alerts []notify.Alert)
	// Webhook queues one state change for every webhook.
	Webhook(a notify.Alert)
}

// Observation is one series' data for a rule: what ExtraSignals returns for
// the synthetic and policy signals.
type Observation struct {
	// Key identifies the instance within the rule; Labels are its
	// selection labels (e.g. check) and Target its display name.
	Key    string
	Labels map[string]string
	Target string
	// Count is how many runs or events the value stands for (min_count
	// applies to it); a zero Count retires the instance.
	Count     int64
	Value     float64
	Exemplars []string
}

// ExtraSignals evaluates the signals that do not come from span rollups:
// synthetic_failure_rate, synthetic_p99 and policy_violations. The synthetic
// checks and architecture rules provide it.
type ExtraSignals interface {
	// Observe returns the observations of rule r over [start, end].
	Observe(ctx context.Context, r *rules.Rule, start, end time.Time) ([]Observation, error)
}

// Options configures an Engine. Zero fields take the defaults.
type Options struct {
	// RulesPath is the rules file or directory read by Reload; "" means
	// no rules.
	RulesPath string
	// Interval is the evaluation period (default 1s).
	Interval time.Duration
	// ExternalURL is the UI's base URL for generatorURL and exemplar
	// links (default "http://127.0.0.1:8686").
	ExternalURL string
	// Notifier receives notifications; nil sends none.
	Notifier Notifier
	// Webhooks is how many webhooks the notifier has: a firing instance is
	// marked notified once every one of them received it.
	Webhooks int
	// ResendInterval is how often firing alerts are resent to
	// Alertmanager (default 1m); their endsAt is now + ResolveTimeout
	// (default 4m).
	ResendInterval time.Duration
	ResolveTimeout time.Duration
	// Extra evaluates the synthetic and policy signals; nil: rules using
	// them report an error.
	Extra ExtraSignals
	// Logger defaults to slog.Default(); Now to time.Now.
	Logger *slog.Logger
	Now    func() time.Time
	// Metrics receives the engine's self-metrics; nil records none.
	Metrics *Metrics
}

// Engine evaluates rules and keeps alert state. It is safe for concurrent
// use: Evaluate runs on one goroutine (Run), the accessors from any.
type Engine struct {
	src      Source
	st       StateStore
	opts     Options
	logger   *slog.Logger
	reloadMu sync.Mutex // serializes Reload

	evalMu sync.Mutex // serializes Evaluate
	cycles uint64     // evaluations started, guarded by evalMu

	mu       sync.Mutex // guards everything below
	set      []*ruleState
	byName   map[string]*ruleState
	loadedAt time.Time
	lastTry  time.Time
	lastErr  string
	// retired are instances of rules removed by a reload, resolved by the
	// next cycle.
	retired []*instance
	// unsaved holds state changes and events a failed save left, retried
	// by the next cycle.
	unsaved saveBatch
}

// ruleState is a loaded rule with its evaluation status and instances.
type ruleState struct {
	rule     rules.Rule
	health   string
	lastErr  string
	lastEval time.Time
	lastDur  time.Duration
	active   map[string]*instance
}

// instance is an active (pending or firing) alert instance.
type instance struct {
	rule        string
	key         string
	labels      map[string]string
	annotations map[string]string
	target      string
	sel         selection
	state       string
	activeAt    time.Time
	firedAt     time.Time
	recoveredAt time.Time
	value       float64
	threshold   float64
	exemplars   []string
	notified    string
	webhookOK   int // webhook deliveries of the current firing that succeeded
	lastAMSend  time.Time
	samples     []Sample
	seen        uint64 // the last cycle that observed the instance's series
}

// New returns an Engine over src that keeps state in st. Call Start (or
// Reload and Run) to use it.
func New(src Source, st StateStore, opts Options) *Engine {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.ExternalURL == "" {
		opts.ExternalURL = "http://127.0.0.1:8686"
	}
	opts.ExternalURL = strings.TrimRight(opts.ExternalURL, "/")
	if opts.ResendInterval <= 0 {
		opts.ResendInterval = time.Minute
	}
	if opts.ResolveTimeout <= 0 {
		opts.ResolveTimeout = 4 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Engine{src: src, st: st, opts: opts, logger: opts.Logger.With("component", "alerting"), byName: map[string]*ruleState{}}
}

// Start loads the rules (an error here is fatal: the operator's file is
// wrong at startup), restores the persisted active states and returns.
// Evaluation begins with Run.
func (e *Engine) Start() error {
	if e.opts.RulesPath != "" {
		rs, err := rules.Load(e.opts.RulesPath)
		if err != nil {
			return fmt.Errorf("alert rules: %w", err)
		}
		e.SetRules(rs)
	}
	return e.restore()
}

// restore loads the persisted active states of the loaded rules; states of
// rules that no longer exist are deleted.
func (e *Engine) restore() error {
	states, err := e.st.AlertStates()
	if err != nil {
		return fmt.Errorf("restore alert states: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range states {
		rs := e.byName[s.Rule]
		if rs == nil || (s.State != store.AlertPending && s.State != store.AlertFiring) {
			e.unsaved.mark(store.AlertStateKey{Rule: s.Rule, Key: s.Key})
			continue
		}
		in := &instance{
			rule: s.Rule, key: s.Key, labels: s.Labels, state: s.State,
			activeAt: s.ActiveAt, firedAt: s.FiredAt, recoveredAt: s.RecoveredAt,
			value: s.Value, threshold: s.Threshold, exemplars: s.Exemplars, notified: s.Notified,
		}
		in.sel = selectionFromLabels(s.Labels)
		in.target = in.sel.display()
		in.annotations = e.annotate(&rs.rule, in)
		rs.active[s.Key] = in
	}
	if n := len(states); n > 0 {
		e.logger.Info("restored alert states", "states", n)
	}
	return nil
}

// SetRules replaces the rule set. Instances of rules that keep their name
// stay; those of removed rules are resolved by the next cycle.
func (e *Engine) SetRules(rs []rules.Rule) {
	e.mu.Lock()
	defer e.mu.Unlock()
	byName := make(map[string]*ruleState, len(rs))
	set := make([]*ruleState, 0, len(rs))
	for _, r := range rs {
		st := &ruleState{rule: r, health: "unknown", active: map[string]*instance{}}
		if old := e.byName[r.Name]; old != nil {
			st.active = old.active
			st.health, st.lastErr, st.lastEval, st.lastDur = old.health, old.lastErr, old.lastEval, old.lastDur
			for _, in := range st.active {
				in.annotations = e.annotate(&st.rule, in)
			}
		}
		byName[r.Name] = st
		set = append(set, st)
	}
	for name, old := range e.byName {
		if byName[name] == nil {
			for _, in := range old.active {
				e.retired = append(e.retired, in)
			}
		}
	}
	e.set, e.byName = set, byName
	e.loadedAt = e.opts.Now()
	e.opts.Metrics.setRules(len(set))
}

// Reload rereads the rules path. A rule set that does not load keeps the
// rules in use; the error names the file, line and key.
func (e *Engine) Reload(ctx context.Context) error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	if e.opts.RulesPath == "" {
		return ErrNoRulesPath
	}
	rs, err := rules.Load(e.opts.RulesPath)
	e.mu.Lock()
	e.lastTry = e.opts.Now()
	if err != nil {
		e.lastErr = err.Error()
		e.mu.Unlock()
		e.opts.Metrics.reloaded(false)
		e.logger.Error("alert rules not reloaded, keeping the rules in use", "path", e.opts.RulesPath, "err", err)
		return fmt.Errorf("reload %s: %w", e.opts.RulesPath, err)
	}
	e.lastErr = ""
	e.mu.Unlock()
	e.SetRules(rs)
	e.opts.Metrics.reloaded(true)
	e.logger.Info("alert rules reloaded", "path", e.opts.RulesPath, "rules", len(rs))
	return nil
}

// Flush saves what is not saved yet: the deliveries reported since the
// last cycle (a notifier closing at shutdown reports its last ones after
// evaluation stopped). Call it after the notifier is closed, before the
// store is.
func (e *Engine) Flush() {
	e.evalMu.Lock()
	defer e.evalMu.Unlock()
	(&cycle{e: e, ctx: context.Background(), now: e.opts.Now()}).save()
}

// ErrNoRulesPath is returned by Reload when no rules path is configured.
var ErrNoRulesPath = errors.New("no rules file configured (--rules)")

// Run evaluates the rules every Interval until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.opts.Interval)
	defer t.Stop()
	for {
		e.Evaluate(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Status implements query.Alerting.
func (e *Engine) Status() RulesStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := RulesStatus{Path: e.opts.RulesPath, LoadedAt: e.loadedAt, LastReloadAt: e.lastTry, LastReloadError: e.lastErr}
	for _, rs := range e.set {
		s := RuleStatus{Rule: rs.rule, Health: rs.health, LastError: rs.lastErr, LastEvaluation: rs.lastEval, EvaluationDuration: rs.lastDur}
		for _, in := range rs.active {
			if in.state == store.AlertFiring {
				s.Firing++
			} else {
				s.Pending++
			}
		}
		st.Rules = append(st.Rules, s)
	}
	return st
}

// Alerts implements query.Alerting: the active instances, firing first,
// then by rule and key.
func (e *Engine) Alerts() []Instance {
	e.mu.Lock()
	out := []Instance{}
	for _, rs := range e.set {
		for _, in := range rs.active {
			out = append(out, e.export(&rs.rule, in))
		}
	}
	e.mu.Unlock()
	slices.SortFunc(out, func(a, b Instance) int {
		if a.State != b.State {
			if a.State == store.AlertFiring {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Rule+"\x00"+a.Key, b.Rule+"\x00"+b.Key)
	})
	return out
}

// History implements query.Alerting.
func (e *Engine) History(ctx context.Context, q store.AlertHistoryQuery) ([]store.AlertEvent, error) {
	return e.st.AlertHistory(ctx, q)
}

func (e *Engine) export(r *rules.Rule, in *instance) Instance {
	return Instance{
		Rule: in.rule, Key: in.key, Signal: r.Signal.Name, Unit: r.Signal.Unit(),
		Labels: maps.Clone(in.labels), Annotations: maps.Clone(in.annotations),
		Target: in.target, State: in.state, Value: in.value, Threshold: in.threshold,
		ActiveAt: in.activeAt, FiredAt: in.firedAt, Exemplars: slices.Clone(in.exemplars),
		Samples: slices.Clone(in.samples), GeneratorURL: e.ruleURL(in.rule),
	}
}

// ruleURL links to the rule in the UI's Alerts view.
func (e *Engine) ruleURL(rule string) string {
	return e.opts.ExternalURL + "/#/alerts?rule=" + url.QueryEscape(rule)
}

// traceURL links to a trace in the UI.
func (e *Engine) traceURL(id string) string {
	return e.opts.ExternalURL + "/#/trace/" + id
}

// OnDelivery records a notification attempt in the history and marks a
// firing instance notified once every webhook received it. It is the
// notifier's notify.Options.OnDelivery.
func (e *Engine) OnDelivery(d notify.Delivery) {
	ev := store.AlertEvent{
		Time: d.Time, Kind: store.AlertEventDelivery, Rule: d.Rule, Key: d.Key,
		Receiver: d.Receiver, Status: d.Status, Attempt: d.Attempt, Outcome: d.Outcome,
		Error: d.Error, HTTPStatus: d.HTTPStatus,
	}
	e.mu.Lock()
	if rs := e.byName[d.Rule]; rs != nil {
		if in := rs.active[d.Key]; in != nil {
			ev.Labels = maps.Clone(in.labels)
			if d.Outcome == "sent" && d.Status == store.AlertFiring && in.state == store.AlertFiring &&
				strings.HasPrefix(d.Receiver, "webhook") && in.notified != store.AlertFiring {
				in.webhookOK++
				if in.webhookOK >= e.opts.Webhooks {
					in.notified = store.AlertFiring
					e.unsaved.mark(store.AlertStateKey{Rule: in.rule, Key: in.key})
				}
			}
		}
	}
	e.unsaved.events = append(e.unsaved.events, ev)
	e.unsaved.trim()
	e.mu.Unlock()
}

// persisted returns the instance as stored.
func (in *instance) persisted() store.AlertState {
	return store.AlertState{
		Rule: in.rule, Key: in.key, Labels: maps.Clone(in.labels), State: in.state,
		ActiveAt: in.activeAt, FiredAt: in.firedAt, RecoveredAt: in.recoveredAt,
		Value: in.value, Threshold: in.threshold, Exemplars: slices.Clone(in.exemplars), Notified: in.notified,
	}
}

// saveBatch is what the next save writes: the instances whose stored
// state is out of date and the events not yet saved.
type saveBatch struct {
	dirty  map[store.AlertStateKey]struct{}
	events []store.AlertEvent
}

// maxUnsaved bounds the events kept for a retry while the store refuses
// writes; beyond it the oldest are dropped.
const maxUnsaved = 10000

func (b *saveBatch) mark(k store.AlertStateKey) {
	if b.dirty == nil {
		b.dirty = map[store.AlertStateKey]struct{}{}
	}
	b.dirty[k] = struct{}{}
}

func (b *saveBatch) trim() {
	if n := len(b.events) - maxUnsaved; n > 0 {
		b.events = slices.Delete(b.events, 0, n)
	}
}
