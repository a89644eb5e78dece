package synthetics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowscope/flowscope/synthetics/checks"
)

// slowServer answers every request after a delay (or when the client
// gives up), counting requests per path and those in flight.
type slowServer struct {
	*httptest.Server
	delay time.Duration

	mu          sync.Mutex
	inFlight    int
	maxInFlight int
	perPath     map[string]int
	firstAt     map[string]time.Time
}

func newSlowServer(t *testing.T, delay time.Duration) *slowServer {
	s := &slowServer{delay: delay, perPath: map[string]int{}, firstAt: map[string]time.Time{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.inFlight++
		s.maxInFlight = max(s.maxInFlight, s.inFlight)
		if s.perPath[r.URL.Path]++; s.perPath[r.URL.Path] == 1 {
			s.firstAt[r.URL.Path] = time.Now()
		}
		s.mu.Unlock()
		select {
		case <-time.After(s.delay):
		case <-r.Context().Done():
		}
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *slowServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perPath[path]
}

func (s *slowServer) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.perPath {
		n += c
	}
	return n
}

func (s *slowServer) peak() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFlight
}

// slowCheck is a one-step check of s's path /name, every second.
func slowCheck(s *slowServer, name string) checks.Check {
	return check(name, time.Second, mkStep("get", "GET", s.URL+"/"+name, status(200)))
}

func TestPhase(t *testing.T) {
	every := 10 * time.Second
	seen := map[time.Duration]bool{}
	for i := range 100 {
		name := fmt.Sprintf("check-%d", i)
		ph := Phase(name, every)
		if ph < 0 || ph >= every || ph != Phase(name, every) {
			t.Fatalf("Phase(%q) = %v", name, ph)
		}
		seen[ph/time.Second] = true
	}
	if len(seen) < 8 {
		t.Errorf("100 phases fall in %d of the 10 seconds", len(seen))
	}
	if Phase("x", 0) != 0 {
		t.Error("Phase with a zero period")
	}
	e := &entry{every: 10, phase: 3}
	for _, tc := range [][2]int64{{3, 13}, {2, 3}, {0, 3}, {-7, 3}, {-8, -7}, {12, 13}, {13, 23}} {
		if got := e.slotAfter(tc[0]); got != tc[1] {
			t.Errorf("slotAfter(%d) = %d, want %d", tc[0], got, tc[1])
		}
	}
}

// TestSetChecksKeepsSchedule: a check that keeps its name and period keeps
// its due time and its entry; a new period takes a new phase.
func TestSetChecksKeepsSchedule(t *testing.T) {
	step := mkStep("get", "GET", "http://127.0.0.1:1/", status(200))
	a := check("a", time.Minute, step)
	h := newHarness(t, []checks.Check{a}, nil)
	p := h.p
	p.mu.Lock()
	ea, due := p.entries["a"], p.entries["a"].due
	p.mu.Unlock()
	if want := Phase("a", time.Minute); time.Duration(due%int64(time.Minute)) != want {
		t.Errorf("a due at %d, phase %v", due, want)
	}
	a2 := check("a", time.Minute, step, step)
	p.SetChecks([]checks.Check{check("b", time.Minute, step), a2})
	p.mu.Lock()
	if p.entries["a"] != ea || ea.due != due || len(ea.check.Steps) != 2 || len(p.due) != 2 {
		t.Errorf("a after SetChecks: same entry %v, due %d (was %d), %d steps, heap %d", p.entries["a"] == ea, ea.due, due, len(ea.check.Steps), len(p.due))
	}
	p.mu.Unlock()
	if names := checkNames(p.Status().Checks); !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("Status().Checks %v", names)
	}
	p.SetChecks([]checks.Check{check("a", 2*time.Hour, step)})
	p.mu.Lock()
	if p.entries["a"] != ea || time.Duration(ea.due%int64(2*time.Hour)) != Phase("a", 2*time.Hour) || len(p.due) != 1 || p.entries["b"] != nil {
		t.Errorf("a with a new period: due %d, heap %d", ea.due, len(p.due))
	}
	p.mu.Unlock()
}

func checkNames(cs []checks.Check) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// TestScheduleNoOverlap: a check whose run takes longer than its period
// skips the ticks that find it running; its runs never overlap.
func TestScheduleNoOverlap(t *testing.T) {
	t.Parallel()
	s := newSlowServer(t, 1600*time.Millisecond)
	h := newHarness(t, []checks.Check{slowCheck(s, "slow")}, nil)
	h.p.Start()
	waitFor(t, 8*time.Second, "two runs and a skipped tick", func() bool {
		skipped, _ := h.metric(t, "flowscope_synthetic_runs_skipped_total", map[string]string{"check": "slow", "reason": "overlap"})
		return len(h.runs.all()) >= 2 && skipped >= 1
	})
	if p := s.peak(); p != 1 {
		t.Errorf("%d runs of one check at once", p)
	}
	for _, run := range h.runs.all() {
		if !run.OK || run.Trigger != "schedule" {
			t.Errorf("run %+v", run)
		}
	}
	if n, _ := h.metric(t, "flowscope_synthetic_schedule_lag_seconds", nil); n < 2 {
		t.Errorf("schedule lag observed %v times", n)
	}
}

// TestSchedulePhaseSpread: checks of the same period do not all start at
// once.
func TestSchedulePhaseSpread(t *testing.T) {
	t.Parallel()
	s := newSlowServer(t, 0)
	var cs []checks.Check
	for i := range 6 {
		cs = append(cs, slowCheck(s, fmt.Sprintf("spread-%d", i)))
	}
	h := newHarness(t, cs, nil)
	h.p.Start()
	waitFor(t, 5*time.Second, "a run of every check", func() bool {
		for _, c := range cs {
			if s.count("/"+c.Name) == 0 {
				return false
			}
		}
		return true
	})
	s.mu.Lock()
	var first, last time.Time
	for _, at := range s.firstAt {
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	s.mu.Unlock()
	if last.Sub(first) < 100*time.Millisecond {
		t.Errorf("the first runs of 6 checks fall within %v", last.Sub(first))
	}
}

// TestMaxConcurrent: no more runs at once than MaxConcurrent; runs that
// wait longer than their period are skipped and counted.
func TestMaxConcurrent(t *testing.T) {
	t.Parallel()
	s := newSlowServer(t, 500*time.Millisecond)
	var cs []checks.Check
	for i := range 6 {
		cs = append(cs, slowCheck(s, fmt.Sprintf("busy-%d", i)))
	}
	h := newHarness(t, cs, func(o *Options) { o.MaxConcurrent = 2 })
	h.p.Start()
	waitFor(t, 10*time.Second, "10 requests", func() bool { return s.total() >= 10 })
	if p := s.peak(); p != 2 {
		t.Errorf("%d runs at once, want 2 (MaxConcurrent)", p)
	}
	if v, _ := h.metric(t, "flowscope_synthetic_runs_in_progress", nil); v > 2 {
		t.Errorf("runs_in_progress %v", v)
	}
}

// TestSetChecksReschedules: a removed check stops (and its series go), an
// added one starts, a kept one keeps running.
func TestSetChecksReschedules(t *testing.T) {
	t.Parallel()
	s := newSlowServer(t, 0)
	h := newHarness(t, []checks.Check{slowCheck(s, "a"), slowCheck(s, "b")}, nil)
	h.p.Start()
	waitFor(t, 5*time.Second, "runs of a and b", func() bool { return len(h.runs.byCheck("a")) > 0 && len(h.runs.byCheck("b")) > 0 })
	h.p.SetChecks([]checks.Check{slowCheck(s, "b"), slowCheck(s, "c")})
	if names := checkNames(h.p.Status().Checks); !slices.Equal(names, []string{"b", "c"}) {
		t.Errorf("Status().Checks %v", names)
	}
	if h.hasSeries(t, "check", "a") {
		t.Error("series of the removed check a remain")
	}
	aRuns, bRuns := s.count("/a"), len(h.runs.byCheck("b"))
	waitFor(t, 5*time.Second, "runs of c and more of b", func() bool {
		return len(h.runs.byCheck("c")) > 0 && len(h.runs.byCheck("b")) > bRuns
	})
	time.Sleep(1100 * time.Millisecond) // a full period more
	if n := s.count("/a"); n != aRuns {
		t.Errorf("a ran %d times after its removal", n-aRuns)
	}
	if v, _ := h.metric(t, "flowscope_synthetic_checks", nil); v != 2 {
		t.Errorf("flowscope_synthetic_checks %v", v)
	}
}

// TestStop: Stop waits for the run in progress, which is stored; with a
// deadline it cancels a run that does not end, which is stored failed.
func TestStop(t *testing.T) {
	t.Parallel()
	t.Run("waits", func(t *testing.T) {
		t.Parallel()
		s := newSlowServer(t, 500*time.Millisecond)
		h := newHarness(t, []checks.Check{slowCheck(s, "w")}, nil)
		h.p.Start()
		waitFor(t, 5*time.Second, "a request", func() bool { return s.total() > 0 })
		if err := h.p.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if runs := h.runs.all(); len(runs) != 1 || !runs[0].OK {
			t.Errorf("after Stop: runs %+v", runs)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		s := newSlowServer(t, time.Hour)
		h := newHarness(t, []checks.Check{slowCheck(s, "d")}, nil)
		h.p.Start()
		waitFor(t, 5*time.Second, "a request", func() bool { return s.total() > 0 })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := h.p.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop: %v, want a deadline error", err)
		}
		waitFor(t, 5*time.Second, "the canceled run stored", func() bool { return len(h.runs.all()) == 1 })
		if run := h.runs.all()[0]; run.OK || run.Steps[0].Error != "request: canceled" {
			t.Errorf("canceled run %+v", run)
		}
	})
}

func TestRunNowUnknown(t *testing.T) {
	h := newHarness(t, nil, nil)
	_, err := h.p.RunNow(context.Background(), "nope")
	if !errors.Is(err, ErrUnknownCheck) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("RunNow(nope): %v", err)
	}
	h.p.SetChecks([]checks.Check{check("x", time.Minute, mkStep("get", "GET", "http://127.0.0.1:1/"))})
	if err := h.p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.p.RunNow(context.Background(), "x"); !errors.Is(err, ErrStopped) {
		t.Errorf("RunNow after Stop: %v", err)
	}
}

// TestRunNowWaitsForScheduled: a manual run waits for the scheduled run in
// progress.
func TestRunNowWaitsForScheduled(t *testing.T) {
	t.Parallel()
	s := newSlowServer(t, 700*time.Millisecond)
	c := slowCheck(s, "m")
	c.Every = time.Hour // one scheduled run at most, at its phase
	h := newHarness(t, []checks.Check{c}, nil)
	// Make the check due now.
	h.p.mu.Lock()
	h.p.entries["m"].phase = time.Now().Add(300*time.Millisecond).UnixNano() % int64(time.Hour)
	h.p.mu.Unlock()
	h.p.Start()
	waitFor(t, 5*time.Second, "the scheduled request", func() bool { return s.total() > 0 })
	run, err := h.p.RunNow(context.Background(), "m")
	if err != nil || !run.OK || run.Trigger != "manual" {
		t.Fatalf("RunNow: %+v, %v", run, err)
	}
	if p := s.peak(); p != 1 {
		t.Errorf("%d runs of the check at once", p)
	}
	runs := h.runs.all()
	if len(runs) != 2 || runs[0].Trigger != "schedule" || runs[0].Start.Add(runs[0].Duration).After(runs[1].Start) {
		t.Errorf("runs %+v", runs)
	}
}
