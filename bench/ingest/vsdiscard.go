package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/flowscope/flowscope/bench/internal/benchproc"
)

// VsDiscardResult is the outcome of -vs-discard: the same load against the
// decode-and-discard server and against the collector, alternately.
type VsDiscardResult struct {
	Repeat int       `json:"repeat"` // discard/flowscope pairs
	Runs   []*Result `json:"runs"`   // in the order run: discard, flowscope, discard, …
	Errors []string  `json:"errors,omitempty"`

	Discard   ServerSummary `json:"discard"`
	Flowscope ServerSummary `json:"flowscope"`
	// Ratio is Flowscope.MedianSpansPerSecond / Discard.MedianSpansPerSecond:
	// the share of a bare OTLP receiver's throughput the collector keeps.
	Ratio float64 `json:"ratio"`
	// PairRatios are flowscope/discard of each consecutive pair.
	PairRatios []float64 `json:"pair_ratios"`
}

// ServerSummary holds the medians over the runs of one server.
type ServerSummary struct {
	Server               string    `json:"server"`
	Runs                 int       `json:"runs"`
	SpansPerSecond       []float64 `json:"spans_per_second"`
	MedianSpansPerSecond float64   `json:"median_spans_per_second"`
	MedianCPUSeconds     *float64  `json:"median_server_cpu_seconds"` // in the window
	MedianCPUMicros      *float64  `json:"median_server_cpu_us_per_span"`
	MedianServerCores    *float64  `json:"median_server_cores"`
	MedianPeakRSSBytes   *float64  `json:"median_peak_rss_bytes"` // VmHWM
	MedianMaxSampledAnon *float64  `json:"median_max_sampled_rss_anon_bytes"`
	MedianLatencyP99Ms   float64   `json:"median_export_latency_p99_ms"`
}

// runVsDiscard runs the load against the discard server and the collector,
// alternately, Repeat times each, every run on a fresh process (and the
// collector on a fresh data directory). Both runs of a pair send the same
// requests (the same seed).
func runVsDiscard(ctx context.Context, c config, logf func(string, ...any)) (*VsDiscardResult, error) {
	switch {
	case c.Addr != "":
		return nil, errors.New("-vs-discard starts its own servers: it cannot be used with -addr")
	case c.Compare || c.CompareRules || c.Restart || c.RestartKill:
		return nil, errors.New("-vs-discard cannot be combined with -compare, -compare-rules or -restart")
	case c.RulesFile != "" || c.Edges > 0:
		return nil, errors.New("-vs-discard runs without alert rules and topology sender")
	case c.Repeat < 1:
		return nil, errors.New("need -repeat >= 1")
	}
	if c.Collector == "" {
		tmp, err := os.MkdirTemp("", "flowscope-bench-bin-")
		if err != nil {
			return nil, fmt.Errorf("temporary directory for the collector: %w", err)
		}
		defer os.RemoveAll(tmp)
		logf("building the collector")
		if c.Collector, err = benchproc.BuildCollector(ctx, tmp); err != nil {
			return nil, err
		}
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	vr := &VsDiscardResult{Repeat: c.Repeat, Discard: ServerSummary{Server: serverDiscard}, Flowscope: ServerSummary{Server: serverFlowscope}}
	var runErr error
	vr.Runs, vr.Errors, runErr = runAlternating(ctx, c.Repeat, logf, func(i int) (config, string) {
		rc := c
		rc.Seed = c.Seed + uint64(i/2)
		rc.discard = i%2 == 0
		rc.Edges = 0
		if rc.discard {
			rc.Freshness = nil
			return rc, serverDiscard
		}
		return rc, serverFlowscope
	})
	vr.summarise()
	return vr, runErr
}

// summarise fills the medians and ratios from the runs.
func (vr *VsDiscardResult) summarise() {
	var lastDiscard *Result
	for _, r := range vr.Runs {
		if r.Server == serverDiscard {
			lastDiscard = r
			continue
		}
		if lastDiscard != nil && lastDiscard.SpansPerSecond > 0 {
			vr.PairRatios = append(vr.PairRatios, r.SpansPerSecond/lastDiscard.SpansPerSecond)
			lastDiscard = nil
		}
	}
	for _, m := range []*ServerSummary{&vr.Discard, &vr.Flowscope} {
		var cpu, us, cores, peak, anon, p99 []float64
		for _, r := range vr.Runs {
			if r.Server != m.Server {
				continue
			}
			m.Runs++
			m.SpansPerSecond = append(m.SpansPerSecond, r.SpansPerSecond)
			p99 = append(p99, r.LatencyP99Ms)
			for _, v := range []struct {
				p   *float64
				out *[]float64
			}{{r.ServerCPUSeconds, &cpu}, {r.ServerCPUMicrosPerSpan, &us}, {r.ServerCores, &cores}} {
				if v.p != nil {
					*v.out = append(*v.out, *v.p)
				}
			}
			if r.PeakRSSBytes != nil {
				peak = append(peak, float64(*r.PeakRSSBytes))
			}
			if r.MaxSampledAnon != nil {
				anon = append(anon, float64(*r.MaxSampledAnon))
			}
		}
		m.MedianSpansPerSecond = median(m.SpansPerSecond)
		m.MedianCPUSeconds, m.MedianCPUMicros, m.MedianServerCores = medianPtr(cpu), medianPtr(us), medianPtr(cores)
		m.MedianPeakRSSBytes, m.MedianMaxSampledAnon = medianPtr(peak), medianPtr(anon)
		m.MedianLatencyP99Ms = median(p99)
	}
	if vr.Discard.MedianSpansPerSecond > 0 && vr.Flowscope.Runs > 0 {
		vr.Ratio = vr.Flowscope.MedianSpansPerSecond / vr.Discard.MedianSpansPerSecond
	}
}

// printTable prints every run's table, then the comparison.
func (vr *VsDiscardResult) printTable(w io.Writer) {
	for i, r := range vr.Runs {
		fmt.Fprintf(w, "== run %d of %d: %s\n", i+1, 2*vr.Repeat, r.Server)
		r.printTable(w)
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "== discard server vs flowscope (%d pair(s), medians)\n", vr.Repeat)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	opt := func(p *float64, format string) string {
		if p == nil {
			return "unknown"
		}
		return fmt.Sprintf(format, *p)
	}
	optMiB := func(p *float64) string {
		if p == nil {
			return "unknown"
		}
		return fmt.Sprintf("%.1f MiB", *p/(1<<20))
	}
	fmt.Fprintln(tw, "\tdiscard\tflowscope\t")
	row := func(k string, f func(m *ServerSummary) string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", k, f(&vr.Discard), f(&vr.Flowscope))
	}
	row("runs", func(m *ServerSummary) string { return strconv.Itoa(m.Runs) })
	row("spans/s", func(m *ServerSummary) string { return fmt.Sprintf("%.0f", m.MedianSpansPerSecond) })
	row("server CPU s in window", func(m *ServerSummary) string { return opt(m.MedianCPUSeconds, "%.1f") })
	row("server cores", func(m *ServerSummary) string { return opt(m.MedianServerCores, "%.2f") })
	row("server CPU µs/span", func(m *ServerSummary) string { return opt(m.MedianCPUMicros, "%.2f") })
	row("peak RSS (VmHWM)", func(m *ServerSummary) string { return optMiB(m.MedianPeakRSSBytes) })
	row("max sampled RSS anon", func(m *ServerSummary) string { return optMiB(m.MedianMaxSampledAnon) })
	row("export p99", func(m *ServerSummary) string { return fmt.Sprintf("%.1f ms", m.MedianLatencyP99Ms) })
	tw.Flush()
	pr := ""
	for i, x := range vr.PairRatios {
		if i > 0 {
			pr += ", "
		}
		pr += strconv.FormatFloat(x, 'f', 3, 64)
	}
	fmt.Fprintf(w, "throughput flowscope / discard: %.3f (pairs: %s)\n", vr.Ratio, pr)
	for _, e := range vr.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}
