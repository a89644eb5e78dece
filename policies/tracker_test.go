package policies

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/flowscope/flowscope/aggregate"
)

func TestTracker(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * 5 * time.Second) }
	ab := Match{Policy: "p", Kind: KindDeny, Level: aggregate.LevelService, Source: "a", Target: "b", Calls: 3}
	ac := Match{Policy: "p", Kind: KindDeny, Level: aggregate.LevelService, Source: "a", Target: "c", Calls: 1}
	abZone := ab
	abZone.Level = aggregate.LevelZone
	tr := NewTrackerOptions(TrackerOptions{Forget: time.Minute})

	seen := func(m Match, first, last time.Time, ok bool) {
		t.Helper()
		f, l, got := tr.Seen(m.Policy, m.Level, m.Source, m.Target)
		if got != ok || !f.Equal(first) || !l.Equal(last) {
			t.Errorf("Seen(%s→%s at %s) = %v, %v, %v; want %v, %v, %v", m.Source, m.Target, m.Level, f, l, got, first, last, ok)
		}
	}
	fresh := func(now time.Time, ms []Match, want ...Match) {
		t.Helper()
		if got := tr.Observe(now, ms); !reflect.DeepEqual(got, want) {
			t.Errorf("Observe at %v: fresh %+v, want %+v", now, got, want)
		}
	}

	seen(ab, time.Time{}, time.Time{}, false)
	fresh(at(0), []Match{ab, abZone}, ab, abZone)
	seen(ab, at(0), at(0), true)
	seen(abZone, at(0), at(0), true)      // the level tells them apart
	fresh(at(1), []Match{ab, ac, ab}, ac) // ab continues; listed twice counts once
	seen(ab, at(0), at(1), true)
	seen(ac, at(1), at(1), true)
	fresh(at(2), []Match{ac})
	fresh(at(3), []Match{ab, ac}, ab) // back after a gap: new again, first seen kept
	seen(ab, at(0), at(3), true)
	fresh(at(4), nil) // an evaluation without violations
	fresh(at(5), []Match{ac}, ac)
	seen(ac, at(1), at(5), true)
	if tr.Len() != 3 {
		t.Errorf("Len %d, want 3", tr.Len())
	}
	// Forgetting after a minute unseen: abZone (last seen at(0)) at
	// at(12), ab (at(3)) at at(16), ac (at(5)) at at(17).
	fresh(at(12), nil)
	seen(abZone, time.Time{}, time.Time{}, false)
	seen(ab, at(0), at(3), true) // not seen for 45s: kept
	fresh(at(16), nil)
	seen(ab, time.Time{}, time.Time{}, false)
	seen(ac, at(1), at(5), true)
	fresh(at(17), []Match{ab}, ab) // forgotten: first seen anew
	seen(ab, at(17), at(17), true)
	seen(ac, time.Time{}, time.Time{}, false)
}

func TestTrackerBound(t *testing.T) {
	tr := NewTrackerOptions(TrackerOptions{MaxViolations: 2})
	now := time.Unix(1e9, 0)
	ms := []Match{{Policy: "p", Source: "a", Target: "b"}, {Policy: "p", Source: "a", Target: "c"}, {Policy: "p", Source: "a", Target: "d"}}
	if got := tr.Observe(now, ms); len(got) != 2 || tr.Len() != 2 || tr.Dropped() != 1 {
		t.Errorf("fresh %d, len %d, dropped %d; want 2, 2, 1", len(got), tr.Len(), tr.Dropped())
	}
	if _, _, ok := tr.Seen("p", aggregate.LevelService, "a", "d"); ok {
		t.Error("the violation beyond the bound is remembered")
	}
	if d := NewTracker().o; d.Forget != DefaultForget || d.MaxViolations != DefaultMaxViolations {
		t.Errorf("defaults %+v", d)
	}
}

// TestTrackerConcurrent runs Observe and Seen together (for -race).
func TestTrackerConcurrent(t *testing.T) {
	tr := NewTracker()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				m := Match{Policy: "p", Source: "a", Target: string(rune('a' + g))}
				tr.Observe(time.Unix(int64(i), 0), []Match{m})
				tr.Seen(m.Policy, m.Level, m.Source, m.Target)
			}
		}()
	}
	wg.Wait()
	if tr.Len() != 4 {
		t.Errorf("Len %d, want 4", tr.Len())
	}
}
