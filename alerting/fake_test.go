package alerting

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/alerting/notify"
	"github.com/flowscope/flowscope/store"
)

// series is the data of one edge or service in the fake source's window.
type series struct {
	count, errors int64
	dur           time.Duration // every timed span takes this long
}

// fakeSource serves a flow graph made of the series set, whatever the
// range.
type fakeSource struct {
	mu    sync.Mutex
	edges map[[2]string]series
	nodes map[string]series
	err   error
	geom  aggregate.Geometry
	calls int
}

func newFakeSource() *fakeSource {
	return &fakeSource{edges: map[[2]string]series{}, nodes: map[string]series{}, geom: aggregate.DefaultGeometry()}
}

func (f *fakeSource) set(edges map[[2]string]series, nodes map[string]series) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.edges, f.nodes = maps.Clone(edges), maps.Clone(nodes)
}

func (f *fakeSource) rollup(s series, seed byte) aggregate.Rollup {
	r := f.geom.NewRollup()
	for i := range s.count {
		var ex aggregate.Exemplar
		ex.TraceID[0], ex.TraceID[15] = seed, byte(i)
		r.Record(int64(s.dur), i < s.errors, ex)
	}
	return *r
}

func (f *fakeSource) FlowGraph(ctx context.Context, start, end time.Time, q aggregate.GraphQuery) (*aggregate.Graph, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	g := &aggregate.Graph{Seconds: int64(end.Sub(start) / time.Second)}
	ids := map[string]bool{}
	for k := range f.edges {
		ids[k[0]], ids[k[1]] = true, true
	}
	for k := range f.nodes {
		ids[k] = true
	}
	names := slices.Sorted(maps.Keys(ids))
	for i, id := range names {
		n := aggregate.GraphNode{ID: id}
		if s, ok := f.nodes[id]; ok {
			n.Requests = f.rollup(s, byte(100+i))
			n.Spans = s.count
		}
		g.Nodes = append(g.Nodes, n)
	}
	keys := slices.SortedFunc(maps.Keys(f.edges), func(a, b [2]string) int {
		if a[0] != b[0] {
			return strings.Compare(a[0], b[0])
		}
		return strings.Compare(a[1], b[1])
	})
	for i, k := range keys {
		g.Edges = append(g.Edges, aggregate.GraphEdge{Source: k[0], Target: k[1], Calls: f.rollup(f.edges[k], byte(i+1))})
	}
	return g, nil
}

func (f *fakeSource) Latency(ctx context.Context, start, end time.Time, q aggregate.LatencyQuery) (*aggregate.Latency, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	s, ok := f.nodes[q.Service+"/"+q.Operation]
	if !ok {
		s = f.nodes[q.Service]
	}
	return &aggregate.Latency{Total: f.rollup(s, 200)}, nil
}

func (f *fakeSource) Operations(ctx context.Context, service string) ([]store.Operation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ops []store.Operation
	for k := range f.nodes {
		if svc, op, ok := strings.Cut(k, "/"); ok && svc == service {
			ops = append(ops, store.Operation{Name: op, Kind: 2})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Name < ops[j].Name })
	return ops, nil
}

func (f *fakeSource) FindTraces(ctx context.Context, q store.TraceQuery) ([]store.TraceSummary, error) {
	var id store.TraceID
	id[0] = 0xee
	return []store.TraceSummary{{TraceID: id, ErrorCount: 1}}, nil
}

// memStore is an in-memory StateStore.
type memStore struct {
	mu     sync.Mutex
	states map[store.AlertStateKey]store.AlertState
	events []store.AlertEvent
	fail   error
}

func newMemStore() *memStore { return &memStore{states: map[store.AlertStateKey]store.AlertState{}} }

func (m *memStore) SaveAlerts(ups []store.AlertState, dels []store.AlertStateKey, evs []store.AlertEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	for _, s := range ups {
		m.states[store.AlertStateKey{Rule: s.Rule, Key: s.Key}] = s
	}
	for _, k := range dels {
		delete(m.states, k)
	}
	m.events = append(m.events, evs...)
	return nil
}

func (m *memStore) AlertStates() ([]store.AlertState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Collect(maps.Values(m.states)), nil
}

func (m *memStore) AlertHistory(ctx context.Context, q store.AlertHistoryQuery) ([]store.AlertEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.events)
	slices.Reverse(out)
	return out, nil
}

func (m *memStore) AppendAlertEvents(evs []store.AlertEvent) error {
	return m.SaveAlerts(nil, nil, evs)
}

// transitions returns the transition events as "T+Ns key from→to".
func (m *memStore) transitions(t0 time.Time) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, e := range m.events {
		if e.Kind == store.AlertEventTransition {
			out = append(out, fmt.Sprintf("%ds %s %s>%s", int(e.Time.Sub(t0)/time.Second), e.Key, e.From, e.To))
		}
	}
	return out
}

// recNotifier records notifications.
type recNotifier struct {
	mu       sync.Mutex
	webhooks []notify.Alert
	am       [][]notify.Alert
}

func (r *recNotifier) Alertmanager(as []notify.Alert) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.am = append(r.am, slices.Clone(as))
}

func (r *recNotifier) Webhook(a notify.Alert) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.webhooks = append(r.webhooks, a)
}

func (r *recNotifier) hooks() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, a := range r.webhooks {
		out = append(out, a.Key+" "+a.Status)
	}
	return out
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// deliverySent is a successful webhook delivery of a firing instance.
func deliverySent(rule, key string) notify.Delivery {
	return notify.Delivery{Time: t0, Receiver: "webhook http://127.0.0.1:1/hook", Rule: rule, Key: key, Status: "firing", Attempt: 1, Outcome: "sent", HTTPStatus: 200}
}
