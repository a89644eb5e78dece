// Package synthetics runs Flowscope's synthetic checks (DESIGN.md,
// "Synthetic checks (contract)"): the Prober schedules every check of a
// set (package checks), runs its HTTP steps, writes each attempt as one
// trace through the normal write path, and stores the result of each run.
package synthetics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/store"
	"github.com/flowscope/flowscope/synthetics/checks"
)

// SpanWriter takes the prober's spans: an OTLP ExportTraceServiceRequest
// protobuf. *store.DB implements it.
type SpanWriter interface {
	WriteTraces(ctx context.Context, req []byte) (store.WriteResult, error)
}

// RunStore keeps run results. *store.DB implements it.
type RunStore interface {
	SaveSyntheticRun(ctx context.Context, run store.SyntheticRun) error
}

// Options configure a Prober. Zero fields take the defaults.
type Options struct {
	// Path is the checks file or directory (checks.Load), "" for none;
	// Reload rereads it.
	Path string
	// Writer receives every attempt's trace; Runs every run's result.
	// Nil: not written.
	Writer SpanWriter
	Runs   RunStore
	// CorrelationHeader is the request header carrying the run's
	// correlation ID (default "X-Correlation-ID").
	CorrelationHeader string
	// MaxConcurrent bounds the runs in progress at once (default 16).
	MaxConcurrent int
	// Logger receives the prober's events; Registerer its self-metrics.
	// Nil: none.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Transport sends the requests. Nil: the prober's own (no keep-alive,
	// so that every run measures a full connection; no proxy). Tests may
	// pass one trusting a test CA. Redirects are never followed.
	Transport http.RoundTripper
	// Now gives the times stored and written (default time.Now); the
	// schedule follows the real clock.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultCorrelationHeader = "X-Correlation-ID"
	DefaultMaxConcurrent     = 16
)

// Errors of the Prober.
var (
	// ErrUnknownCheck is wrapped by RunNow's error for a name that no
	// loaded check has.
	ErrUnknownCheck = errors.New("unknown synthetic check")
	// ErrNoChecksPath is returned by Reload when no checks path is
	// configured.
	ErrNoChecksPath = errors.New("no synthetic checks file configured (--synthetics)")
	// ErrStopped is wrapped by RunNow's error once Stop was called.
	ErrStopped = errors.New("synthetic checks stopped")
)

// Trigger values of store.SyntheticRun.
const (
	triggerSchedule = "schedule"
	triggerManual   = "manual"
)

// Prober runs synthetic checks on their schedules. Its methods are safe for
// concurrent use.
type Prober struct {
	opts     Options
	logger   *slog.Logger
	metrics  *metrics
	client   *http.Client
	corrHdr  string
	sem      chan struct{} // one token per run in progress
	reloadMu sync.Mutex    // serializes Reload

	mu       sync.Mutex // guards everything below
	entries  map[string]*entry
	due      dueHeap
	set      []checks.Check // as given, sorted by name
	loadedAt time.Time
	lastTry  time.Time
	lastErr  string
	started  bool
	stopping bool

	wake       chan struct{} // tells the scheduler that the heap changed
	stop       chan struct{} // closed by Stop
	done       chan struct{} // closed when the scheduler has returned
	runs       tracker       // runs in progress, scheduled and manual
	runsCtx    context.Context
	cancelRuns context.CancelFunc
}

// New returns a Prober of the checks at opts.Path, loaded and validated; an
// invalid set is an error and nothing is started. Call Start to schedule
// the checks.
func New(opts Options) (*Prober, error) {
	if opts.CorrelationHeader == "" {
		opts.CorrelationHeader = DefaultCorrelationHeader
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Transport == nil {
		opts.Transport = newTransport()
	}
	var set []checks.Check
	if opts.Path != "" {
		var err error
		if set, err = checks.Load(opts.Path); err != nil {
			return nil, fmt.Errorf("load synthetic checks: %w", err)
		}
	}
	runsCtx, cancel := context.WithCancel(context.Background())
	p := &Prober{
		opts:       opts,
		logger:     opts.Logger.With("component", "synthetics"),
		metrics:    newMetrics(opts.Registerer),
		client:     newClient(opts.Transport),
		corrHdr:    http.CanonicalHeaderKey(opts.CorrelationHeader),
		sem:        make(chan struct{}, opts.MaxConcurrent),
		entries:    map[string]*entry{},
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		runsCtx:    runsCtx,
		cancelRuns: cancel,
	}
	p.SetChecks(set)
	return p, nil
}

// Start starts the scheduler: each check runs every Every, first at its
// phase (see Phase). Start after Stop does nothing.
func (p *Prober) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.stopping {
		return
	}
	p.started = true
	p.reschedule(time.Now().UnixNano())
	go p.schedule()
	p.logger.Info("synthetic checks scheduled", "checks", len(p.entries), "max_concurrent", p.opts.MaxConcurrent)
}

// Stop stops scheduling and manual runs, and waits for the runs in
// progress, whose traces and results are written before it returns. When
// ctx ends first, the runs still going are canceled and Stop returns an
// error wrapping ctx's at once: their results (failed, "canceled") are
// written moments later, if the store is still open.
func (p *Prober) Stop(ctx context.Context) error {
	p.mu.Lock()
	first := !p.stopping
	p.stopping = true
	started := p.started
	p.mu.Unlock()
	if first {
		close(p.stop)
	}
	if started {
		<-p.done
	}
	if err := p.runs.wait(ctx); err != nil {
		p.cancelRuns()
		return fmt.Errorf("stop synthetic checks: %d runs still in progress: %w", p.runs.count(), err)
	}
	p.cancelRuns()
	return nil
}

// SetChecks replaces the checks. Checks whose name is new start on their
// schedule, removed ones stop (a run in progress completes and is stored),
// and those that keep their name keep their schedule and take the new
// definition from their next run. Names should be unique; of a repeated
// name the last check is used.
func (p *Prober) SetChecks(cs []checks.Check) {
	now := time.Now().UnixNano()
	p.mu.Lock()
	defer p.mu.Unlock()
	next := make(map[string]*entry, len(cs))
	for _, c := range cs {
		e := next[c.Name]
		if e == nil {
			e = p.entries[c.Name]
		}
		if e == nil {
			e = newEntry(c.Name)
		}
		p.place(e, c, now)
		next[c.Name] = e
	}
	for name, e := range p.entries {
		if next[name] != e {
			p.unplace(e)
			p.metrics.removeCheck(name)
		}
	}
	p.entries = next
	p.set = p.set[:0:0]
	for _, e := range next {
		p.set = append(p.set, e.given)
	}
	slices.SortFunc(p.set, func(a, b checks.Check) int { return cmp.Compare(a.Name, b.Name) })
	p.loadedAt = p.opts.Now()
	p.metrics.setChecks(len(next))
	p.poke()
}

// Status describes the checks in use and the last reload.
type Status struct {
	// Path is Options.Path.
	Path string
	// LoadedAt is when the checks in use were set (loaded or reloaded);
	// LastReloadAt when a reload was last tried, and LastReloadError why
	// it failed ("" when it succeeded).
	LoadedAt        time.Time
	LastReloadAt    time.Time
	LastReloadError string
	// Checks are the checks in use, sorted by name.
	Checks []checks.Check
}

// Status returns the checks in use and the outcome of the last reload.
func (p *Prober) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Status{
		Path: p.opts.Path, LoadedAt: p.loadedAt, LastReloadAt: p.lastTry, LastReloadError: p.lastErr,
		Checks: slices.Clone(p.set),
	}
}

// Reload rereads Options.Path. A set that does not load keeps the checks in
// use: the error (each problem with its file, line and key) is logged,
// counted and reported by Status. Without a path it returns
// ErrNoChecksPath.
func (p *Prober) Reload(ctx context.Context) error {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	if p.opts.Path == "" {
		return ErrNoChecksPath
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reload %s: %w", p.opts.Path, err)
	}
	cs, err := checks.Load(p.opts.Path)
	p.mu.Lock()
	p.lastTry = p.opts.Now()
	if err != nil {
		p.lastErr = err.Error()
		p.mu.Unlock()
		p.metrics.reloaded(false)
		p.logger.Error("synthetic checks not reloaded, keeping the checks in use", "path", p.opts.Path, "err", err)
		return fmt.Errorf("reload %s: %w", p.opts.Path, err)
	}
	p.lastErr = ""
	p.mu.Unlock()
	p.SetChecks(cs)
	p.metrics.reloaded(true)
	p.logger.Info("synthetic checks reloaded", "path", p.opts.Path, "checks", len(cs))
	return nil
}

// RunNow runs the check name at once with Trigger "manual", stores the
// result and returns it. It waits for the check's run in progress, if any
// (a check never has two runs at once), and for a free run slot. The
// error wraps ErrUnknownCheck for a name no check has; a result that could
// not be stored is returned with the error.
func (p *Prober) RunNow(ctx context.Context, name string) (store.SyntheticRun, error) {
	p.mu.Lock()
	e, stopping := p.entries[name], p.stopping
	if e != nil && !stopping {
		p.runs.add() // under mu: a Stop that follows waits for the run
	}
	p.mu.Unlock()
	switch {
	case e == nil:
		return store.SyntheticRun{}, fmt.Errorf("run check %q: %w", name, ErrUnknownCheck)
	case stopping:
		return store.SyntheticRun{}, fmt.Errorf("run check %q: %w", name, ErrStopped)
	}
	defer p.runs.done()
	select {
	case e.busy <- struct{}{}:
	case <-ctx.Done():
		return store.SyntheticRun{}, fmt.Errorf("run check %q: waiting for its run in progress: %w", name, ctx.Err())
	}
	defer func() { <-e.busy }()
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return store.SyntheticRun{}, fmt.Errorf("run check %q: waiting for a run slot: %w", name, ctx.Err())
	}
	p.mu.Lock()
	c := e.check
	p.mu.Unlock()
	run, traces := p.probe(ctx, e, &c, triggerManual)
	<-p.sem
	return run, p.record(e, run, traces)
}

// normalize fills the defaults of a check built without the parser.
func normalize(c checks.Check) checks.Check {
	c.Every = max(c.Every, checks.MinEvery)
	if c.Timeout <= 0 {
		c.Timeout = min(checks.DefaultTimeout, c.Every)
	}
	c.Retries = max(c.Retries, 0)
	return c
}

// tracker counts runs in progress and lets Stop wait for them.
type tracker struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0
}

func (t *tracker) add() {
	t.mu.Lock()
	if t.n == 0 {
		t.idle = make(chan struct{})
	}
	t.n++
	t.mu.Unlock()
}

func (t *tracker) done() {
	t.mu.Lock()
	if t.n--; t.n == 0 {
		close(t.idle)
	}
	t.mu.Unlock()
}

func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// wait returns when no run is in progress, or ctx's error when it ends
// first.
func (t *tracker) wait(ctx context.Context) error {
	t.mu.Lock()
	if t.n == 0 {
		t.mu.Unlock()
		return nil
	}
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
