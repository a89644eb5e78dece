package fanout

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/store"
)

// Local is what the front end keeps itself rather than asking the nodes:
// the declared architectures (which, like alert states and synthetic runs,
// live in the front end's own store). *store.DB implements it.
type Local interface {
	Architecture(ctx context.Context, name string) (store.Architecture, error)
	Architectures(ctx context.Context) ([]store.ArchitectureInfo, error)
}

// Peers returns the current peer base URLs (http://host:port). *PeerSet
// implements it.
type Peers interface {
	Current() []string
}

// Options configures a Store.
type Options struct {
	// Peers lists the nodes. Required.
	Peers Peers
	// Local answers Architecture and Architectures. Required.
	Local Local
	// Timeout bounds each peer's answer to one query; a peer slower than
	// that is left out of the answer and named as missing. 0 means
	// DefaultPeerTimeout.
	Timeout time.Duration
	// Token is the bearer token sent to the peers (their read scope);
	// empty sends none.
	Token string
	// Client makes the requests; nil means a client with keep-alive
	// connections and no overall timeout (Timeout bounds each request).
	Client *http.Client
	// Logger logs missing peers of queries without a Tracker; nil
	// discards.
	Logger *slog.Logger
	// Registerer receives the peer self-metrics; nil registers none.
	Registerer prometheus.Registerer
}

// DefaultPeerTimeout is the peer timeout when Options.Timeout is 0.
const DefaultPeerTimeout = 10 * time.Second

// Store answers the query service (and the alert engine, the policy
// monitor and the compatibility APIs) by asking every peer and merging:
// it implements query.Store. It is safe for concurrent use.
type Store struct {
	o       Options
	metrics *peerMetrics
}

// New returns a Store over o.Peers.
func New(o Options) *Store {
	if o.Timeout <= 0 {
		o.Timeout = DefaultPeerTimeout
	}
	if o.Client == nil {
		o.Client = &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second,
			ForceAttemptHTTP2: true,
		}}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Store{o: o, metrics: newPeerMetrics(o.Registerer)}
}

// peerAnswer is one peer's answer to one query.
type peerAnswer struct {
	peer     string
	body     []byte
	notFound bool
}

// peerError is a peer's refusal of a request (400): a front-end bug or a
// version mismatch, never a missing peer.
type peerError struct {
	peer, msg string
}

func (e *peerError) Error() string {
	return fmt.Sprintf("peer %s refused the query: %s", e.peer, e.msg)
}

// ask sends method with req to every peer at once and returns the answers
// of those that answered, in peer order. Peers that did not answer in
// time, or failed, are recorded in ctx's Tracker; when none answered, or
// ctx is Strict and any did not, ask fails wrapping ErrPeersUnavailable.
func (s *Store) ask(ctx context.Context, method string, req any) ([]peerAnswer, error) {
	peers := s.o.Peers.Current()
	if len(peers) == 0 {
		return nil, fmt.Errorf("%s: no peers configured or resolved: %w", method, ErrPeersUnavailable)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%s: encode request: %w", method, err)
	}
	answers := make([]peerAnswer, len(peers))
	errs := make([]error, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], errs[i] = s.call(ctx, p, method, body)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t := trackerFrom(ctx)
	out := answers[:0:0]
	var missing []string
	for i, err := range errs {
		var pe *peerError
		switch {
		case err == nil:
			out = append(out, answers[i])
		case errors.As(err, &pe):
			return nil, fmt.Errorf("%s: %w", method, err)
		default:
			missing = append(missing, peers[i])
			t.add(peers[i])
			if t == nil {
				s.o.Logger.Warn("peer left out of an answer", "peer", peers[i], "method", method, "err", err)
			}
		}
	}
	switch {
	case len(out) == 0:
		return nil, fmt.Errorf("%s: no peer answered (%s): %w", method, joinErrs(peers, errs), ErrPeersUnavailable)
	case len(missing) > 0 && t != nil && t.strict:
		return nil, fmt.Errorf("%s: peers %s did not answer: %w", method, strings.Join(missing, ", "), ErrPeersUnavailable)
	}
	return out, nil
}

func joinErrs(peers []string, errs []error) string {
	parts := make([]string, 0, len(errs))
	for i, err := range errs {
		if err != nil {
			parts = append(parts, peers[i]+": "+err.Error())
		}
	}
	return strings.Join(parts, "; ")
}

// call asks one peer.
func (s *Store) call(ctx context.Context, peer, method string, body []byte) (peerAnswer, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	a, err := s.roundTrip(ctx, peer, method, body)
	s.metrics.observe(peer, method, time.Since(start), err)
	return a, err
}

func (s *Store) roundTrip(ctx context.Context, peer, method string, body []byte) (peerAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(peer, "/")+peerPrefix+method, bytes.NewReader(body))
	if err != nil {
		return peerAnswer{}, fmt.Errorf("peer URL: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if s.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.o.Token)
	}
	resp, err := s.o.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return peerAnswer{}, fmt.Errorf("no answer within %v", s.o.Timeout)
		}
		return peerAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return peerAnswer{}, fmt.Errorf("read answer: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return peerAnswer{peer: peer, body: b}, nil
	case http.StatusNotFound:
		if method == "trace" {
			return peerAnswer{peer: peer, notFound: true}, nil
		}
		return peerAnswer{}, fmt.Errorf("HTTP 404: no peer API at %s (not a Flowscope node, or an older one)", peer)
	case http.StatusBadRequest:
		return peerAnswer{}, &peerError{peer: peer, msg: strings.TrimSpace(string(b))}
	}
	return peerAnswer{}, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
}

// Services implements query.Store: the span counts of every peer added up
// by service.
func (s *Store) Services(ctx context.Context, start, end time.Time) ([]store.ServiceStats, error) {
	answers, err := s.ask(ctx, "services", rangeReq{Start: unixNano(start), End: unixNano(end)})
	if err != nil {
		return nil, err
	}
	byName := map[string]*store.ServiceStats{}
	for _, a := range answers {
		var part []store.ServiceStats
		if err := decodeAnswer(a, &part); err != nil {
			return nil, err
		}
		for _, st := range part {
			if cur, ok := byName[st.Name]; ok {
				cur.SpanCount += st.SpanCount
				cur.ErrorCount += st.ErrorCount
			} else {
				byName[st.Name] = &st
			}
		}
	}
	out := make([]store.ServiceStats, 0, len(byName))
	for _, st := range byName {
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b store.ServiceStats) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

func decodeAnswer(a peerAnswer, v any) error {
	if err := json.Unmarshal(a.body, v); err != nil {
		return fmt.Errorf("peer %s: decode answer: %w", a.peer, err)
	}
	return nil
}

// Operations implements query.Store: the union of the peers' operations.
func (s *Store) Operations(ctx context.Context, service string) ([]store.Operation, error) {
	answers, err := s.ask(ctx, "operations", operationsReq{Service: service})
	if err != nil {
		return nil, err
	}
	seen := map[store.Operation]bool{}
	out := []store.Operation{}
	for _, a := range answers {
		var part []store.Operation
		if err := decodeAnswer(a, &part); err != nil {
			return nil, err
		}
		for _, op := range part {
			if !seen[op] {
				seen[op] = true
				out = append(out, op)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b store.Operation) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Kind, b.Kind))
	})
	return out, nil
}

// Trace implements query.Store: the spans of id from every peer holding
// some (one, unless the set of nodes changed while the trace was sent).
func (s *Store) Trace(ctx context.Context, id store.TraceID) (*tracepb.TracesData, error) {
	answers, err := s.ask(ctx, "trace", traceReq{TraceID: id.String()})
	if err != nil {
		return nil, err
	}
	var out *tracepb.TracesData
	for _, a := range answers {
		if a.notFound {
			continue
		}
		td := &tracepb.TracesData{}
		if err := proto.Unmarshal(a.body, td); err != nil {
			return nil, fmt.Errorf("peer %s: decode trace: %w", a.peer, err)
		}
		if out == nil {
			out = td
		} else {
			out.ResourceSpans = append(out.ResourceSpans, td.ResourceSpans...)
		}
	}
	if out == nil {
		return nil, fmt.Errorf("trace %s: %w", id, store.ErrNotFound)
	}
	return out, nil
}

// FindTraces implements query.Store: every peer's newest q.Limit matches,
// merged newest first and cut to q.Limit again. Parts of one trace held
// by several peers are summarized together. A query with a SpanFilter is
// answered by FindTraces' filter path (filter.go).
func (s *Store) FindTraces(ctx context.Context, q store.TraceQuery) ([]store.TraceSummary, error) {
	if q.SpanFilter != nil {
		return s.findFiltered(ctx, q)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = store.DefaultSearchLimit
	}
	sums, err := s.search(ctx, q, limit)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(sums, func(a, b store.TraceSummary) int {
		return cmp.Or(b.Start.Compare(a.Start), bytes.Compare(a.TraceID[:], b.TraceID[:]))
	})
	if len(sums) > limit {
		sums = sums[:limit]
	}
	return sums, nil
}

// search asks every peer for q's matches, at most limit each, and merges
// the parts of a trace; the result is unsorted.
func (s *Store) search(ctx context.Context, q store.TraceQuery, limit int) ([]store.TraceSummary, error) {
	answers, err := s.ask(ctx, "search", searchReq{
		Service: q.Service, Operation: q.Operation, Source: q.Source, Target: q.Target,
		Start: unixNano(q.Start), End: unixNano(q.End), MinDuration: int64(q.MinDuration), MaxDuration: int64(q.MaxDuration),
		Attributes: q.Attributes, Status: string(q.Status), Limit: limit,
	})
	if err != nil {
		return nil, err
	}
	return mergeSummaries(answers)
}

// mergeSummaries decodes the peers' summaries and merges those of one
// trace (held in parts by several peers).
func mergeSummaries(answers []peerAnswer) ([]store.TraceSummary, error) {
	var out []store.TraceSummary
	at := map[store.TraceID]int{}
	for _, a := range answers {
		var part []summary
		if err := decodeAnswer(a, &part); err != nil {
			return nil, err
		}
		for _, w := range part {
			sum, err := fromWire(w)
			if err != nil {
				return nil, fmt.Errorf("peer %s: %w", a.peer, err)
			}
			if i, ok := at[sum.TraceID]; ok {
				out[i] = mergeSummary(out[i], sum)
				continue
			}
			at[sum.TraceID] = len(out)
			out = append(out, sum)
		}
	}
	if out == nil {
		out = []store.TraceSummary{}
	}
	return out, nil
}

// mergeSummary combines the summaries of two parts of one trace: counts
// add up, the range is the union, services are the union, and the root is
// the part's whose root is earliest.
func mergeSummary(a, b store.TraceSummary) store.TraceSummary {
	endA, endB := a.Start.Add(a.Duration), b.Start.Add(b.Duration)
	out := a
	if b.Start.Before(a.Start) {
		out.Start, out.RootService, out.RootOperation = b.Start, b.RootService, b.RootOperation
	}
	end := endA
	if endB.After(end) {
		end = endB
	}
	out.Duration = end.Sub(out.Start)
	out.SpanCount += b.SpanCount
	out.ErrorCount += b.ErrorCount
	out.Services = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(a.Services), b.Services...))))
	if out.MatchedSpan == ([8]byte{}) {
		out.MatchedSpan = b.MatchedSpan
	}
	return out
}

// Correlation implements query.Store: the union of the peers' traces
// carrying id, oldest first, the newest limit of them.
func (s *Store) Correlation(ctx context.Context, id string, limit int) ([]store.TraceSummary, error) {
	if limit <= 0 {
		limit = store.MaxSearchLimit
	}
	answers, err := s.ask(ctx, "correlation", correlationReq{ID: id, Limit: limit})
	if err != nil {
		return nil, err
	}
	sums, err := mergeSummaries(answers)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(sums, func(a, b store.TraceSummary) int {
		return cmp.Or(a.Start.Compare(b.Start), bytes.Compare(a.TraceID[:], b.TraceID[:]))
	})
	if len(sums) > limit {
		sums = sums[len(sums)-limit:]
	}
	return sums, nil
}

// MetricNames implements query.Store: the union of the peers' metrics.
func (s *Store) MetricNames(ctx context.Context, start, end time.Time) ([]store.MetricInfo, error) {
	answers, err := s.ask(ctx, "metric-names", rangeReq{Start: unixNano(start), End: unixNano(end)})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	out := []store.MetricInfo{}
	for _, a := range answers {
		var part []store.MetricInfo
		if err := decodeAnswer(a, &part); err != nil {
			return nil, err
		}
		for _, m := range part {
			if !seen[m.Name] {
				seen[m.Name] = true
				out = append(out, m)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b store.MetricInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Metrics implements query.Store: the peers' data of the metric, one after
// the other.
func (s *Store) Metrics(ctx context.Context, name string, start, end time.Time) ([]*metricspb.ResourceMetrics, error) {
	answers, err := s.ask(ctx, "metrics", metricsReq{Name: name, Start: unixNano(start), End: unixNano(end)})
	if err != nil {
		return nil, err
	}
	var out []*metricspb.ResourceMetrics
	for _, a := range answers {
		md := &metricspb.MetricsData{}
		if err := proto.Unmarshal(a.body, md); err != nil {
			return nil, fmt.Errorf("peer %s: decode metrics: %w", a.peer, err)
		}
		out = append(out, md.ResourceMetrics...)
	}
	return out, nil
}

// FlowGraph implements query.Store: the peers' graphs merged
// (aggregate.Graph.Merge; histograms bucket by bucket).
func (s *Store) FlowGraph(ctx context.Context, start, end time.Time, q aggregate.GraphQuery) (*aggregate.Graph, error) {
	answers, err := s.ask(ctx, "flow-graph", graphReq{Start: unixNano(start), End: unixNano(end),
		Level: int(q.Level), Operation: q.Operation, Namespace: q.Namespace})
	if err != nil {
		return nil, err
	}
	m := aggregate.NewGraphMerger()
	for _, a := range answers {
		if err := m.Add(a.body); err != nil {
			return nil, fmt.Errorf("peer %s: decode flow graph: %w", a.peer, err)
		}
	}
	return m.Result()
}

// Latency implements query.Store: the peers' distributions merged, step
// by step.
func (s *Store) Latency(ctx context.Context, start, end time.Time, q aggregate.LatencyQuery) (*aggregate.Latency, error) {
	answers, err := s.ask(ctx, "latency", latencyReq{Start: unixNano(start), End: unixNano(end),
		Service: q.Service, Operation: q.Operation, Kind: int(q.Kind), Source: q.Source, Target: q.Target,
		Level: int(q.Level), Step: q.Step})
	if err != nil {
		return nil, err
	}
	var out *aggregate.Latency
	for _, a := range answers {
		l, _, err := aggregate.DecodeLatency(a.body)
		if err != nil {
			return nil, fmt.Errorf("peer %s: decode latency: %w", a.peer, err)
		}
		if out == nil {
			out = l
			continue
		}
		mergeLatency(out, l)
	}
	return out, nil
}

// mergeLatency adds b to a: totals, provisional calls and, step by step,
// the series (sorted by Start).
func mergeLatency(a, b *aggregate.Latency) {
	a.Total.Merge(&b.Total)
	a.Provisional += b.Provisional
	if len(b.Series) == 0 {
		return
	}
	at := make(map[int64]int, len(a.Series))
	for i, st := range a.Series {
		at[st.Start] = i
	}
	for _, st := range b.Series {
		if i, ok := at[st.Start]; ok {
			a.Series[i].Rollup.Merge(&st.Rollup)
		} else {
			at[st.Start] = len(a.Series)
			a.Series = append(a.Series, st)
		}
	}
	slices.SortFunc(a.Series, func(x, y aggregate.LatencyStep) int { return cmp.Compare(x.Start, y.Start) })
}

// Architecture implements query.Store from the front end's own store.
func (s *Store) Architecture(ctx context.Context, name string) (store.Architecture, error) {
	return s.o.Local.Architecture(ctx, name)
}

// Architectures implements query.Store from the front end's own store.
func (s *Store) Architectures(ctx context.Context) ([]store.ArchitectureInfo, error) {
	return s.o.Local.Architectures(ctx)
}
