package promexport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/store"
)

// Options configures the handler. Zero fields take the values of
// DefaultOptions.
type Options struct {
	// Store answers the queries. Required.
	Store Store
	// Logger logs failures; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Buckets are the upper bounds of the classic histogram buckets.
	// They are sorted; duplicates and bounds that are not positive are
	// dropped. Nil: DefaultOptions().Buckets.
	Buckets []time.Duration
	// Quantiles are the quantiles exposed as gauges, fractions in (0, 1).
	// They are sorted; duplicates and values outside (0, 1) are dropped.
	// Nil: 0.5, 0.9, 0.99.
	Quantiles []float64
	// QuantileWindow is the range, ending at the scrape, the quantiles are
	// computed over (to whole 10-second rollup windows). Zero: 1m.
	QuantileWindow time.Duration
	// MaxSeries bounds the series of one exposition (package
	// documentation, "Cardinality"). Zero: 20000.
	MaxSeries int
	// Settle is how old a rollup window must be (past its start) before
	// the counters take it as final: spans stored for a window after that
	// are not counted (package documentation, "Counters"). It should
	// exceed the aggregation's edge wait plus the longest span plus the
	// SDKs' export delay. Zero: 5m; at least 10s.
	Settle time.Duration
}

// DefaultOptions returns the defaults of every field but Store and Logger.
func DefaultOptions() Options {
	return Options{
		Now: time.Now,
		Buckets: []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
			50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
			time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second},
		Quantiles:      []float64{0.5, 0.9, 0.99},
		QuantileWindow: time.Minute,
		MaxSeries:      20000,
		Settle:         5 * time.Minute,
	}
}

// Store is what the handler reads. *store.DB implements it.
type Store interface {
	// FlowGraph returns the flow graph over [start, end] (to whole
	// 10-second windows; see store.DB.FlowGraph).
	FlowGraph(ctx context.Context, start, end time.Time, q aggregate.GraphQuery) (*aggregate.Graph, error)
	// Latency returns the latency distribution selected by q over
	// [start, end] (see store.DB.Latency).
	Latency(ctx context.Context, start, end time.Time, q aggregate.LatencyQuery) (*aggregate.Latency, error)
	// Operations lists the span names and kinds of a service.name.
	Operations(ctx context.Context, service string) ([]store.Operation, error)
}

var _ Store = (*store.DB)(nil)

// ContentType is the Content-Type of the exposition: the Prometheus text
// format, version 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// NewHandler returns the handler of GET /api/v1/prometheus/metrics: the
// RED metrics of every service, edge and operation in the Prometheus text
// format (package documentation). The counters count from the call to
// NewHandler on. The handler is safe for concurrent use; scrapes are
// served one at a time.
func NewHandler(o Options) http.Handler {
	def := DefaultOptions()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = def.Now
	}
	if o.Buckets == nil {
		o.Buckets = def.Buckets
	}
	if o.Quantiles == nil {
		o.Quantiles = def.Quantiles
	}
	if o.QuantileWindow <= 0 {
		o.QuantileWindow = def.QuantileWindow
	}
	if o.MaxSeries <= 0 {
		o.MaxSeries = def.MaxSeries
	}
	if o.Settle <= 0 {
		o.Settle = def.Settle
	}
	o.Settle = max(o.Settle, 10*time.Second)
	bounds := make([]int64, 0, len(o.Buckets))
	for _, b := range o.Buckets {
		if b > 0 {
			bounds = append(bounds, int64(b))
		}
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	var qs []float64
	for _, q := range o.Quantiles {
		if q > 0 && q < 1 {
			qs = append(qs, q)
		}
	}
	slices.Sort(qs)
	qs = slices.Compact(qs)

	logger := o.Logger.With("component", "promexport")
	origin := floorTo(o.Now().Unix(), 10)
	e := &exporter{
		st: o.Store, log: logger, now: o.Now, bounds: bounds, quantiles: qs,
		qwin: o.QuantileWindow, maxSeries: o.MaxSeries, settle: int64(o.Settle / time.Second),
		origin: origin, settled: origin,
		base: map[entity]*acc{}, tracked: map[entity]bool{}, shown: map[entity]*sample{}, namespace: map[string]string{},
	}
	return &handler{e: e, log: logger, w: newWriter(bounds, qs)}
}

// handler serves the exposition.
type handler struct {
	e   *exporter
	log *slog.Logger
	w   *writer
}

var bufPool = sync.Pool{New: func() any { return new([]byte) }}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	snap, err := h.e.scrape(r.Context())
	if err != nil {
		if r.Context().Err() != nil {
			return // the scraper gave up (its timeout): nobody reads the answer
		}
		status := http.StatusInternalServerError
		if errors.Is(err, store.ErrClosed) {
			status = http.StatusServiceUnavailable
		}
		h.log.Error("collect RED metrics", "err", err)
		http.Error(w, "collect RED metrics: "+err.Error(), status)
		return
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	*bp = h.w.write((*bp)[:0], snap)
	w.Header().Set("Content-Type", ContentType)
	w.Header().Add("Vary", "Accept-Encoding")
	var out io.Writer = w
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzipPool.Get().(*gzip.Writer)
		defer gzipPool.Put(gz)
		gz.Reset(w)
		defer gz.Close()
		out = gz
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(len(*bp)))
	}
	if _, err := out.Write(*bp); err != nil {
		h.log.Debug("write RED metrics", "err", err)
	}
}

var gzipPool = sync.Pool{New: func() any {
	gz, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return gz
}}

// acceptsGzip reports whether an Accept-Encoding header value accepts
// gzip (listed, or as *, with a q-value that is not 0).
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" && coding != "*" {
			continue
		}
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(k, "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && !math.IsNaN(f) {
					q = f
				}
			}
		}
		if q > 0 {
			return true
		}
	}
	return false
}
