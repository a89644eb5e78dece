package synthetics

import (
	"container/heap"
	"hash/fnv"
	"time"

	"github.com/flowscope/flowscope/synthetics/checks"
)

// The schedule: one goroutine sleeps until the earliest due check of a heap
// ordered by due time, hands each due check to a goroutine of its own for
// the run, and puts it back due one period later. A check's runs fall on
// the instants t with t ≡ Phase(name, every) (mod every) since the Unix
// epoch, so that checks of the same period spread over it and keep their
// times across reloads and restarts.

// Phase returns the offset of the runs of the check name within its period
// every: its runs are due at the instants whose Unix time in nanoseconds
// is Phase modulo every. It is the FNV-1a hash of the name modulo every.
func Phase(name string, every time.Duration) time.Duration {
	if every <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(every))
}

// entry is a check in the schedule.
type entry struct {
	name  string
	given checks.Check // as SetChecks received it, for Status
	// check is the definition runs use (normalized), every and phase its
	// schedule and due the next due time (Unix ns); index is the entry's
	// place in the heap, -1 when out of it. All guarded by Prober.mu.
	check        checks.Check
	every, phase int64
	due          int64
	index        int
	// busy holds a token while a run of the check is in progress.
	busy chan struct{}
}

func newEntry(name string) *entry {
	return &entry{name: name, index: -1, busy: make(chan struct{}, 1)}
}

// slotAfter returns the first due time of e strictly after t (Unix ns).
func (e *entry) slotAfter(t int64) int64 {
	d := t - e.phase
	k := d / e.every
	if d < 0 && d%e.every != 0 {
		k-- // floor division
	}
	return (k+1)*e.every + e.phase
}

// place gives e the definition c and puts it in the heap; an entry already
// there keeps its due time unless its period changed.
func (p *Prober) place(e *entry, c checks.Check, now int64) {
	e.given, e.check = c, normalize(c)
	every := int64(e.check.Every)
	if e.index >= 0 && every == e.every {
		return
	}
	e.every, e.phase = every, int64(Phase(e.name, e.check.Every))
	e.due = e.slotAfter(now)
	if e.index >= 0 {
		heap.Fix(&p.due, e.index)
	} else {
		heap.Push(&p.due, e)
	}
}

// unplace takes e out of the heap.
func (p *Prober) unplace(e *entry) {
	if e.index >= 0 {
		heap.Remove(&p.due, e.index)
	}
}

// reschedule sets every entry due at its first slot after now.
func (p *Prober) reschedule(now int64) {
	for _, e := range p.due {
		e.due = e.slotAfter(now)
	}
	heap.Init(&p.due)
}

// poke wakes the scheduler to look at the heap again.
func (p *Prober) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// dueRun is a check due at a time, handed to dispatch.
type dueRun struct {
	e     *entry
	check checks.Check
	at    int64
}

// schedule is the scheduler goroutine, until Stop.
func (p *Prober) schedule() {
	defer close(p.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var ready []dueRun
	for {
		now := time.Now().UnixNano()
		ready = ready[:0]
		wait := time.Duration(-1)
		p.mu.Lock()
		for len(p.due) > 0 && p.due[0].due <= now {
			e := p.due[0]
			ready = append(ready, dueRun{e: e, check: e.check, at: e.due})
			e.due = e.slotAfter(now) // slots missed while late are skipped
			heap.Fix(&p.due, 0)
		}
		if len(p.due) > 0 {
			if first := p.due[0]; first.due-now > first.every {
				// The clock went back: due times are a period or more
				// away. Take them from the clock's new time.
				p.reschedule(now)
			}
			wait = time.Duration(p.due[0].due - now)
		}
		p.mu.Unlock()
		for i := range ready {
			p.dispatch(&ready[i])
			ready[i] = dueRun{}
		}
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-p.wake:
			timer.Stop()
		case <-p.stop:
			timer.Stop()
			return
		}
	}
}

// dispatch starts the run of a due check on a goroutine of its own, unless
// the check's previous run is still going (the tick is skipped). The run
// waits at most the check's period for a run slot.
func (p *Prober) dispatch(d *dueRun) {
	e, c, at := d.e, d.check, d.at
	select {
	case e.busy <- struct{}{}:
	default:
		p.observe(e, func(m *metrics) { m.skip(e.name, skipOverlap) })
		return
	}
	p.runs.add()
	go func() {
		defer p.runs.done()
		defer func() { <-e.busy }()
		if !p.acquire(c.Every) {
			if !p.stopped() {
				p.observe(e, func(m *metrics) { m.skip(e.name, skipConcurrency) })
			}
			return
		}
		if p.stopped() {
			<-p.sem
			return
		}
		p.metrics.scheduleLag(time.Since(time.Unix(0, at)))
		run, traces := p.probe(p.runsCtx, e, &c, triggerSchedule)
		<-p.sem
		p.record(e, run, traces) // logged
	}()
}

// acquire takes a run slot, waiting at most limit; false when none came
// free in time or the prober stopped.
func (p *Prober) acquire(limit time.Duration) bool {
	select {
	case p.sem <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case p.sem <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-p.stop:
		return false
	}
}

// stopped reports whether Stop was called.
func (p *Prober) stopped() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// observe records metrics of e's series unless e was removed meanwhile
// (SetChecks deleted its series, which must not come back).
func (p *Prober) observe(e *entry, f func(m *metrics)) {
	if p.metrics == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.entries[e.name] == e {
		f(p.metrics)
	}
}

// dueHeap orders entries by due time (container/heap).
type dueHeap []*entry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *dueHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*h = old[:len(old)-1]
	return e
}
