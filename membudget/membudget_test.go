package membudget

import (
	"sync"
	"testing"
)

func TestBudget(t *testing.T) {
	b := New(100)
	steps := []struct {
		op      string
		n       int64
		ok      bool
		used    int64
		refused int64
	}{
		{"try", 60, true, 60, 0},
		{"try", 50, false, 60, 1},
		{"try", 40, true, 100, 1},
		{"try", 1, false, 100, 2},
		{"release", 70, true, 30, 2},
		{"acquire", 90, true, 120, 2}, // already held: may pass the limit
		{"try", 1, false, 120, 3},
		{"release", 120, true, 0, 3},
		{"try", 0, true, 0, 3},
	}
	for i, s := range steps {
		ok := true
		switch s.op {
		case "try":
			ok = b.TryAcquire(s.n)
		case "acquire":
			b.Acquire(s.n)
		case "release":
			b.Release(s.n)
		}
		if ok != s.ok || b.Used() != s.used || b.Refused() != s.refused {
			t.Fatalf("step %d %s(%d): ok %v used %d refused %d, want %v %d %d", i, s.op, s.n, ok, b.Used(), b.Refused(), s.ok, s.used, s.refused)
		}
	}
	if b.Peak() != 120 || b.Limit() != 100 {
		t.Fatalf("peak %d limit %d", b.Peak(), b.Limit())
	}
}

func TestNilBudgetIsUnlimited(t *testing.T) {
	var b *Budget
	if !b.TryAcquire(1 << 40) {
		t.Fatal("nil budget refused")
	}
	b.Acquire(1)
	b.Release(1)
	if b.Used() != 0 || b.Limit() != 0 || b.Peak() != 0 || b.Refused() != 0 {
		t.Fatal("nil budget reports usage")
	}
}

func TestConcurrentNeverPassesLimit(t *testing.T) {
	b := New(1000)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10000 {
				if b.TryAcquire(7) {
					if u := b.Used(); u > 1000 {
						t.Errorf("used %d over the limit", u)
					}
					b.Release(7)
				}
			}
		}()
	}
	wg.Wait()
	if b.Used() != 0 || b.Peak() > 1000 {
		t.Fatalf("used %d peak %d", b.Used(), b.Peak())
	}
}

func TestReleaseTooMuchPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	New(10).Release(1)
}
