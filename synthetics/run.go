package synthetics

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/flowscope/flowscope/store"
	"github.com/flowscope/flowscope/synthetics/checks"
)

// writeTimeout bounds the storing of a run's result and of each trace;
// their context does not derive from the run's, so that a run canceled by
// Stop is still stored.
const writeTimeout = 10 * time.Second

// probe runs check c: attempts until one passes or the retries are used
// up. It returns the last attempt's result and every attempt's trace, to
// be written by record once the run slot is free.
func (p *Prober) probe(ctx context.Context, e *entry, c *checks.Check, trigger string) (store.SyntheticRun, [][]byte) {
	p.metrics.runStarted()
	defer p.metrics.runEnded()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(p.runsCtx, cancel)() // Stop's deadline cancels manual runs too

	var run store.SyntheticRun
	var traces [][]byte
	for n := 1; ; n++ {
		a := p.newAttempt(c)
		var spans []byte
		run, spans = a.run(ctx, trigger, n)
		traces = append(traces, spans)
		p.observe(e, func(m *metrics) { m.attempt(c.Name, run.Duration) })
		if run.OK || n > c.Retries || ctx.Err() != nil {
			return run, traces
		}
		p.logger.Debug("synthetic run failed, retrying", "check", c.Name, "run_id", run.RunID, "attempt", n, "err", run.Error)
	}
}

// record writes the traces of a run's attempts, counts and logs the run,
// and stores it. The writes do not hold a run slot: a store busy for a
// while (a checkpoint) delays no run of another check.
func (p *Prober) record(e *entry, run store.SyntheticRun, traces [][]byte) error {
	for _, spans := range traces {
		p.writeSpans(run, spans)
	}
	p.observe(e, func(m *metrics) { m.result(run.Check, run.OK) })
	if run.OK {
		p.logger.Debug("synthetic run passed", "check", run.Check, "run_id", run.RunID, "trigger", run.Trigger,
			"attempt", run.Attempt, "duration", run.Duration)
	} else {
		p.logger.Warn("synthetic run failed", "check", run.Check, "run_id", run.RunID, "trigger", run.Trigger,
			"attempt", run.Attempt, "trace_id", run.TraceID, "err", run.Error)
	}
	if p.opts.Runs == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if err := p.opts.Runs.SaveSyntheticRun(ctx, run); err != nil {
		p.metrics.writeFailed("run")
		p.logger.Error("synthetic run not stored", "check", run.Check, "run_id", run.RunID, "err", err)
		return fmt.Errorf("store run %s of check %q: %w", run.RunID, run.Check, err)
	}
	return nil
}

// writeSpans writes one attempt's trace (nil: none).
func (p *Prober) writeSpans(run store.SyntheticRun, req []byte) {
	if p.opts.Writer == nil || req == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	res, err := p.opts.Writer.WriteTraces(ctx, req)
	switch {
	case err != nil:
		p.metrics.writeFailed("spans")
		p.logger.Error("synthetic run's spans not written", "check", run.Check, "run_id", run.RunID, "err", err)
	case res.Rejected > 0:
		p.metrics.writeFailed("spans")
		p.logger.Error("synthetic run's spans refused", "check", run.Check, "run_id", run.RunID,
			"rejected", res.Rejected, "reason", res.Message)
	}
}

// attempt is one attempt of a run of a check: one trace.
type attempt struct {
	p       *Prober
	c       *checks.Check
	traceID [16]byte
	rootID  [8]byte
	runID   string
	corr    string
	// env holds the values of the check's ${env:NAME} variables that are
	// set, read at the start; vars the values extracted so far.
	env  map[string]string
	vars map[string]string
	mask masker
	// start is the attempt's start by Options.Now, mono by the real clock
	// (elapsed times are measured on it).
	start, mono time.Time
	// spans describes the steps' spans, in step order.
	spans []stepSpan
}

// stepSpan is what a step's CLIENT span needs beyond its stored result.
type stepSpan struct {
	ran        bool
	id         [8]byte
	start, end time.Time
	host       string
	port       int
}

func (p *Prober) newAttempt(c *checks.Check) *attempt {
	a := &attempt{
		p: p, c: c, traceID: newTraceID(), rootID: newSpanID(), runID: newRunID(), corr: newUUID(),
		vars: map[string]string{}, spans: make([]stepSpan, len(c.Steps)),
	}
	a.env = readEnv(c)
	secrets := make([]string, 0, len(a.env))
	for _, v := range a.env {
		secrets = append(secrets, v)
	}
	a.mask = newMasker(secrets)
	a.start, a.mono = p.opts.Now(), time.Now()
	return a
}

// readEnv reads the environment variables the check's templates use; an
// unset one is left out (using it fails the step).
func readEnv(c *checks.Check) map[string]string {
	env := map[string]string{}
	add := func(t checks.Template) {
		for _, part := range t.Parts {
			if part.Kind != checks.VarEnv {
				continue
			}
			if v, ok := os.LookupEnv(part.Text); ok {
				env[part.Text] = v
			}
		}
	}
	for i := range c.Steps {
		s := &c.Steps[i]
		add(s.Request.URL)
		add(s.Request.Body)
		for _, h := range s.Request.Headers {
			add(h.Value)
		}
		for _, as := range s.Assert {
			add(as.Text)
		}
	}
	return env
}

// run makes the attempt: the steps in order, a failed one ending the run
// unless it continues on failure. It returns the result, masked, and the
// attempt's trace as an ExportTraceServiceRequest (nil if it could not be
// encoded).
func (a *attempt) run(ctx context.Context, trigger string, n int) (store.SyntheticRun, []byte) {
	c := a.c
	run := store.SyntheticRun{
		Check: c.Name, RunID: a.runID, CorrelationID: a.corr, TraceID: hex.EncodeToString(a.traceID[:]),
		Trigger: trigger, Start: a.start, OK: true, Attempt: n, Steps: make([]store.SyntheticStep, len(c.Steps)),
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	ended := false
	for i := range c.Steps {
		s := &c.Steps[i]
		if ended {
			run.Steps[i] = a.skipped(s)
			continue
		}
		run.Steps[i] = a.step(ctx, s, &a.spans[i])
		if st := &run.Steps[i]; !st.OK && !s.ContinueOnFailure {
			ended, run.OK = true, false
			run.Error = s.Name + ": " + st.Error
		}
	}
	run.Duration = time.Since(a.mono)
	a.mask.cleanRun(&run)
	req, err := a.trace(&run)
	if err != nil {
		a.p.logger.Error("synthetic run's spans not encoded", "check", c.Name, "run_id", a.runID, "err", err)
	}
	return run, req
}

// now returns the current time on the attempt's clock: Options.Now at the
// start plus the real time elapsed.
func (a *attempt) now() time.Time { return a.start.Add(time.Since(a.mono)) }

// lookup gives a variable's value at this point of the run.
func (a *attempt) lookup(part checks.Part) (string, bool) {
	switch part.Kind {
	case checks.VarExtract:
		v, ok := a.vars[part.Text]
		return v, ok
	case checks.VarUUID:
		return newUUID(), true
	case checks.VarTimestamp:
		return strconv.FormatInt(a.now().Unix(), 10), true
	case checks.VarCorrelationID:
		return a.corr, true
	case checks.VarEnv:
		v, ok := a.env[part.Text]
		return v, ok
	}
	return "", false
}

// expand expands t; the error names what (e.g. "url") and the variable
// without a value.
func (a *attempt) expand(what string, t checks.Template) (string, error) {
	var missing checks.Part
	s, err := t.Expand(func(part checks.Part) (string, bool) {
		v, ok := a.lookup(part)
		if !ok {
			missing = part
		}
		return v, ok
	})
	switch {
	case err == nil:
		return s, nil
	case missing.Kind == checks.VarEnv:
		return "", fmt.Errorf("%s: environment variable %s is not set", what, missing.Text)
	case missing.Kind == checks.VarExtract:
		return "", fmt.Errorf("%s: variable %s has no value (no earlier step extracted it)", what, missing)
	}
	return "", fmt.Errorf("%s: %w", what, err)
}

// partial expands t as far as the run knows: variables without a value,
// and ${uuid}, are kept as written; secrets are masked later.
func (a *attempt) partial(t checks.Template) string {
	s, _ := t.Expand(func(part checks.Part) (string, bool) {
		if part.Kind == checks.VarUUID {
			return part.String(), true
		}
		if v, ok := a.lookup(part); ok {
			return v, true
		}
		return part.String(), true
	})
	return s
}

// skipped is the result of a step that did not run.
func (a *attempt) skipped(s *checks.Step) store.SyntheticStep {
	return store.SyntheticStep{
		Name: s.Name, Method: method(s), URL: a.partial(s.Request.URL),
		Skipped: true, ContinueOnFailure: s.ContinueOnFailure,
	}
}

// method returns the step's HTTP method, GET by default.
func method(s *checks.Step) string {
	if s.Request.Method == "" {
		return "GET"
	}
	return s.Request.Method
}
