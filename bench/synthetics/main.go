// Command synthetics measures the synthetic-check prober under a steady
// schedule: how late runs start (schedule lag), whether every due run
// completes, and what the prober costs in CPU. Run from the repository
// root:
//
//	go run ./bench/synthetics -checks 100 -every 10s -duration 60s
//
// It starts a target HTTP server on 127.0.0.1 and a real store in a
// temporary directory, schedules -checks checks of two steps each (a POST
// whose JSON answer gives a token, then a GET sending it) every -every, and
// lets them run for -duration. It then stops the prober (waiting for the
// runs in progress) and prints one line per figure: schedule lag p50, p99
// and max (a run's start minus its due time, from the stored runs and
// synthetics.Phase), runs completed against the runs due, failed runs,
// the process's CPU time (user + system, getrusage) as a percentage of one
// core over the duration, stored runs and written spans. It exits 1 when a
// target is missed: lag p99 ≤ 100 ms, CPU ≤ 5 %, every due run completed
// and passed, every run stored and every span accepted. The target server
// and the store run in the same process, so their CPU is counted too.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime/pprof"
	"slices"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/store"
	"github.com/flowscope/flowscope/synthetics"
	"github.com/flowscope/flowscope/synthetics/checks"
)

// Targets.
const (
	lagP99Target = 100 * time.Millisecond
	cpuTarget    = 5.0 // % of one core
)

type config struct {
	checks        int
	every         time.Duration
	duration      time.Duration
	maxConcurrent int
	cpuProfile    string
}

func main() {
	var cfg config
	flag.IntVar(&cfg.checks, "checks", 100, "number of checks (1 to 1000)")
	flag.DurationVar(&cfg.every, "every", 10*time.Second, "schedule of every check (at least 1s)")
	flag.DurationVar(&cfg.duration, "duration", 60*time.Second, "how long the checks run (at most 1h)")
	flag.IntVar(&cfg.maxConcurrent, "max-concurrent", synthetics.DefaultMaxConcurrent, "runs in progress at once")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured duration to this file")
	flag.Parse()
	switch {
	case cfg.checks < 1 || cfg.checks > checks.MaxChecks:
		fail(fmt.Errorf("-checks %d: want 1 to %d", cfg.checks, checks.MaxChecks))
	case cfg.every < checks.MinEvery:
		fail(fmt.Errorf("-every %v: want at least %v", cfg.every, checks.MinEvery))
	case cfg.duration < cfg.every || cfg.duration > time.Hour:
		fail(fmt.Errorf("-duration %v: want from -every to 1h", cfg.duration))
	}
	res, err := run(cfg)
	if err != nil {
		fail(err)
	}
	if !res.print(os.Stdout) {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/synthetics:", err)
	os.Exit(2)
}

// result holds the figures measured.
type result struct {
	cfg                 config
	lags                []time.Duration
	due, completed      int // runs due in the window, and those of them completed
	recorded            int // runs the prober stored, in or after the window
	failed              int
	cpu                 float64 // % of one core
	stored              int
	spans, spanRejected int64
	writeErrors         int
	skipped             float64
}

// run measures one configuration.
func run(cfg config) (*result, error) {
	dir, err := os.MkdirTemp("", "flowscope-bench-synthetics-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	defer db.Close()
	target, err := startTarget()
	if err != nil {
		return nil, err
	}
	defer target.Close()

	rec := &recorder{db: db}
	reg := prometheus.NewRegistry()
	p, err := synthetics.New(synthetics.Options{
		Writer: rec, Runs: rec, MaxConcurrent: cfg.maxConcurrent, Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		return nil, fmt.Errorf("prober: %w", err)
	}
	cs, err := benchChecks(cfg, "http://"+target.Addr().String())
	if err != nil {
		return nil, err
	}
	p.SetChecks(cs)

	var before syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &before); err != nil {
		return nil, fmt.Errorf("getrusage: %w", err)
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	p.Start()
	time.Sleep(cfg.duration)
	end := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	var after syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &after); err != nil {
		return nil, fmt.Errorf("getrusage: %w", err)
	}

	res := &result{cfg: cfg}
	cpu := tv(after.Utime) - tv(before.Utime) + tv(after.Stime) - tv(before.Stime)
	res.cpu = 100 * cpu.Seconds() / elapsed.Seconds()
	// Runs due in the last second may not have been dispatched when Stop
	// came: they are left out of both the due and the completed runs.
	last := end.Add(-time.Second)
	for _, c := range cs {
		res.due += slots(c.Name, cfg.every, start, last)
	}
	rec.mu.Lock()
	for _, r := range rec.runs {
		l := lag(r.check, cfg.every, r.start)
		res.lags = append(res.lags, l)
		if !r.start.Add(-l).After(last) {
			res.completed++
		}
		if !r.ok {
			res.failed++
		}
	}
	res.recorded = len(rec.runs)
	res.spans, res.spanRejected, res.writeErrors = rec.spans, rec.rejected, rec.errors
	rec.mu.Unlock()
	stored, err := db.SyntheticRuns(context.Background(), store.SyntheticRunQuery{Limit: 10_000})
	if err != nil {
		return nil, fmt.Errorf("read stored runs: %w", err)
	}
	res.stored = len(stored)
	res.skipped = counterSum(reg, "flowscope_synthetic_runs_skipped_total")
	return res, nil
}

// benchChecks returns the checks: a login whose JSON answer gives a token,
// then a GET sending it.
func benchChecks(cfg config, base string) ([]checks.Check, error) {
	var errs []error
	tmpl := func(s string) checks.Template {
		t, err := checks.ParseTemplate(s)
		errs = append(errs, err)
		return t
	}
	path := func(s string) *checks.JSONPath {
		p, err := checks.CompileJSONPath(s)
		errs = append(errs, err)
		return p
	}
	cs := make([]checks.Check, cfg.checks)
	for i := range cs {
		cs[i] = checks.Check{
			Name: fmt.Sprintf("bench-%04d", i), Every: cfg.every, Timeout: min(cfg.every, 5*time.Second),
			Steps: []checks.Step{{
				Name: "login",
				Request: checks.Request{Method: "POST", URL: tmpl(base + "/login"), Body: tmpl(`{"user":"synthetic"}`),
					Headers: []checks.Header{{Name: "Content-Type", Value: tmpl("application/json")}}},
				Extract: []checks.Extract{{Name: "TOKEN", Kind: checks.ExtractJSONPath, JSONPath: path("$.token")}},
				Assert: []checks.Assertion{
					{Kind: checks.AssertStatus, Status: 200},
					{Kind: checks.AssertJSONPathEquals, JSONPath: path("$.ok"), Equals: true},
				},
			}, {
				Name: "item",
				Request: checks.Request{Method: "GET", URL: tmpl(base + "/item/${uuid}"),
					Headers: []checks.Header{{Name: "Authorization", Value: tmpl("Bearer ${TOKEN}")}}},
				Assert: []checks.Assertion{
					{Kind: checks.AssertStatusIn, StatusIn: []int{200, 201}},
					{Kind: checks.AssertBodyContains, Text: tmpl("item")},
					{Kind: checks.AssertHeader, Header: "Content-Type", Op: checks.HeaderMatches, Regex: regexp.MustCompile("^application/json")},
				},
			}},
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("bench checks: %w", err)
	}
	return cs, nil
}

// startTarget serves the checks' requests on 127.0.0.1.
func startTarget() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("target server: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true,"token":"tok-123"}`)
	})
	mux.HandleFunc("GET /item/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-123" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"item":%q}`, r.PathValue("id"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	return l, nil
}

// recorder passes runs and spans to the store, keeping what it measures.
type recorder struct {
	db *store.DB

	mu              sync.Mutex
	runs            []runInfo
	spans, rejected int64
	errors          int
}

type runInfo struct {
	check string
	start time.Time
	ok    bool
}

func (r *recorder) WriteTraces(ctx context.Context, req []byte) (store.WriteResult, error) {
	res, err := r.db.WriteTraces(ctx, req)
	r.mu.Lock()
	r.spans += res.Accepted
	r.rejected += res.Rejected
	if err != nil {
		r.errors++
	}
	r.mu.Unlock()
	return res, err
}

func (r *recorder) SaveSyntheticRun(ctx context.Context, run store.SyntheticRun) error {
	err := r.db.SaveSyntheticRun(ctx, run)
	r.mu.Lock()
	if err != nil {
		r.errors++
	}
	r.runs = append(r.runs, runInfo{check: run.Check, start: run.Start, ok: run.OK})
	r.mu.Unlock()
	return err
}

// lag returns how late a run of check that started at start began: its
// start minus the latest due time at or before it.
func lag(check string, every time.Duration, start time.Time) time.Duration {
	phase := int64(synthetics.Phase(check, every))
	return time.Duration((start.UnixNano() - phase) % int64(every))
}

// slots counts the due times of check in (from, to].
func slots(check string, every time.Duration, from, to time.Time) int {
	phase := int64(synthetics.Phase(check, every))
	k := func(t time.Time) int64 { return (t.UnixNano() - phase) / int64(every) } // times are after 1970
	return int(k(to) - k(from))
}

func tv(t syscall.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}

// counterSum adds up every series of the counter name.
func counterSum(reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// quantile returns the nearest-rank q-quantile of sorted ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*q+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// print writes the table and reports whether every target was met.
func (r *result) print(out io.Writer) bool {
	slices.Sort(r.lags)
	p99 := quantile(r.lags, .99)
	ok := true
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "name\tvalue\ttarget\t")
	line := func(name, value, target string, met bool) {
		mark := ""
		if target != "" {
			mark = "ok"
			if !met {
				mark, ok = "MISSED", false
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, value, target, mark)
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
	line("checks", fmt.Sprintf("%d × 2 steps every %v", r.cfg.checks, r.cfg.every), "", true)
	line("duration", r.cfg.duration.String(), "", true)
	line("schedule lag p50", ms(quantile(r.lags, .5)), "", true)
	line("schedule lag p99", ms(p99), "≤ "+ms(lagP99Target), p99 <= lagP99Target)
	line("schedule lag max", ms(quantile(r.lags, 1)), "", true)
	line("runs completed", fmt.Sprintf("%d of %d due", r.completed, r.due), fmt.Sprintf("≥ %d", r.due), r.completed >= r.due)
	line("runs failed", fmt.Sprint(r.failed), "0", r.failed == 0)
	line("runs skipped", fmt.Sprint(r.skipped), "0", r.skipped == 0)
	line("CPU", fmt.Sprintf("%.2f %% of one core", r.cpu), fmt.Sprintf("≤ %.0f %%", cpuTarget), r.cpu <= cpuTarget)
	line("stored runs", fmt.Sprint(r.stored), fmt.Sprintf("= %d", r.recorded), r.stored == r.recorded)
	line("spans accepted", fmt.Sprint(r.spans), fmt.Sprintf("= %d", 3*r.recorded), r.spans == int64(3*r.recorded))
	line("spans rejected, write errors", fmt.Sprintf("%d, %d", r.spanRejected, r.writeErrors), "0, 0", r.spanRejected == 0 && r.writeErrors == 0)
	tw.Flush()
	return ok
}
