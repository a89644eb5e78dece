package policies

import (
	"sync"
	"time"

	"github.com/flowscope/flowscope/aggregate"
)

// Defaults of TrackerOptions.
const (
	// DefaultForget is how long a violation not seen is remembered.
	DefaultForget = 24 * time.Hour
	// DefaultMaxViolations bounds the violations a Tracker remembers.
	DefaultMaxViolations = 100_000
)

// TrackerOptions configures a Tracker.
type TrackerOptions struct {
	// Forget: a violation not seen for this long is dropped (0:
	// DefaultForget).
	Forget time.Duration
	// MaxViolations bounds the violations remembered; new ones beyond it
	// are not, and are counted (Tracker.Dropped). 0: DefaultMaxViolations.
	MaxViolations int
}

// trackKey identifies a violation.
type trackKey struct {
	policy         string
	level          aggregate.Level
	source, target string
}

// seen is what a Tracker knows of a violation.
type seen struct {
	first, last time.Time
	// eval is the number of the last evaluation that saw it.
	eval uint64
}

// Tracker remembers, across evaluations, when each violation was first
// and last seen. It is safe for concurrent use.
type Tracker struct {
	o TrackerOptions

	mu      sync.Mutex
	evals   uint64 // evaluations observed
	m       map[trackKey]*seen
	dropped int64
}

// NewTracker returns a Tracker with the default options.
func NewTracker() *Tracker { return NewTrackerOptions(TrackerOptions{}) }

// NewTrackerOptions returns a Tracker with options o (zero fields take
// their defaults).
func NewTrackerOptions(o TrackerOptions) *Tracker {
	if o.Forget <= 0 {
		o.Forget = DefaultForget
	}
	if o.MaxViolations <= 0 {
		o.MaxViolations = DefaultMaxViolations
	}
	return &Tracker{o: o, m: map[trackKey]*seen{}}
}

// Observe records the matches of one evaluation at now; it returns the
// matches new since the previous evaluation (for logging): those the
// previous call did not have, in the order of matches (a violation that
// comes back after a gap is new again, and keeps its first seen time
// unless it was forgotten). Violations not seen for Forget or longer at
// now are dropped. The matches are not retained.
func (t *Tracker) Observe(now time.Time, matches []Match) (fresh []Match) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.evals++
	for _, m := range matches {
		k := trackKey{m.Policy, m.Level, m.Source, m.Target}
		s, ok := t.m[k]
		switch {
		case !ok:
			if len(t.m) >= t.o.MaxViolations {
				t.dropped++
				continue
			}
			s = &seen{first: now}
			t.m[k] = s
			fresh = append(fresh, m)
		case s.eval == t.evals:
			continue // listed twice in one evaluation
		case s.eval != t.evals-1:
			fresh = append(fresh, m)
		}
		s.last, s.eval = now, t.evals
	}
	cutoff := now.Add(-t.o.Forget)
	for k, s := range t.m {
		if !s.last.After(cutoff) {
			delete(t.m, k)
		}
	}
	return fresh
}

// Seen returns first and last seen of a violation, ok false if never seen
// (or forgotten).
func (t *Tracker) Seen(policy string, level aggregate.Level, source, target string) (first, last time.Time, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.m[trackKey{policy, level, source, target}]
	if !ok {
		return time.Time{}, time.Time{}, false
	}
	return s.first, s.last, true
}

// Len is the number of violations remembered.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// Dropped counts the new violations not remembered because MaxViolations
// were.
func (t *Tracker) Dropped() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dropped
}
