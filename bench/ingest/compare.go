package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/flowscope/flowscope/bench/internal/benchproc"
)

// compareTarget is the acceptance bound of -compare: with aggregation on,
// throughput within 15 % of the throughput with it off.
const compareTarget = 0.85

// comparePause separates the runs of -compare so that the previous
// collector's exit and file removal do not overlap the next measurement.
const comparePause = 2 * time.Second

// CompareResult is the outcome of -compare (aggregation off and on) or
// -compare-rules (alert rules off and on, aggregation on in both).
type CompareResult struct {
	// Mode is "aggregation" (-compare) or "rules" (-compare-rules): what
	// Off and On leave out and have.
	Mode   string    `json:"mode"`
	Target float64   `json:"target"` // the acceptance bound of Ratio
	Repeat int       `json:"repeat"` // off/on pairs
	Runs   []*Result `json:"runs"`   // in the order run: off, on, off, on, …
	Errors []string  `json:"errors,omitempty"`

	Off ModeSummary `json:"off"`
	On  ModeSummary `json:"on"`
	// Ratio is On.MedianSpansPerSecond / Off.MedianSpansPerSecond; the
	// target is ≥ 0.85 for aggregation, ≥ 0.9 for rules.
	Ratio        float64 `json:"ratio"`
	WithinTarget bool    `json:"within_target"`
	// PairRatios are on/off of each consecutive pair, to show the noise.
	PairRatios []float64 `json:"pair_ratios"`

	Freshness *FreshnessResult `json:"freshness"` // markers of every "on" run, pooled
	Rollup    *RollupResult    `json:"rollup"`    // rollup records of every "on" run, summed
	// Rules is the rule status of every rules-on run (-compare-rules).
	Rules []*RulesResult `json:"rules,omitempty"`
}

// ModeSummary holds the medians over the runs of one mode.
type ModeSummary struct {
	Aggregation          bool      `json:"aggregation"`
	Rules                bool      `json:"rules"` // ran with the alert rules
	Runs                 int       `json:"runs"`
	SpansPerSecond       []float64 `json:"spans_per_second"`
	MedianSpansPerSecond float64   `json:"median_spans_per_second"`
	MedianPeakRSSBytes   *float64  `json:"median_peak_rss_bytes"`        // VmHWM
	MedianMaxSampledRSS  *float64  `json:"median_max_sampled_rss_bytes"` // largest sampled VmRSS
	MedianRSSAnonBytes   *float64  `json:"median_rss_anon_bytes"`        // RssAnon at the end of the load
	MedianMaxSampledAnon *float64  `json:"median_max_sampled_rss_anon_bytes"`
	MedianMaxSampledFile *float64  `json:"median_max_sampled_rss_file_bytes"`
	MedianLongestAckGap  *float64  `json:"median_longest_ack_gap_ms"`
	MedianServerCores    *float64  `json:"median_server_cores"`
	MedianLatencyP99Ms   float64   `json:"median_export_latency_p99_ms"`
}

// runCompare runs the load with aggregation off and on, alternately, Repeat
// times each, every run on a fresh collector and data directory.
func runCompare(ctx context.Context, c config, logf func(string, ...any)) (*CompareResult, error) {
	if c.Addr != "" {
		return nil, errors.New("-compare starts its own collectors: it cannot be used with -addr")
	}
	if c.Repeat < 1 {
		return nil, errors.New("need -repeat >= 1")
	}
	if c.Collector == "" {
		tmp, err := os.MkdirTemp("", "flowscope-bench-bin-")
		if err != nil {
			return nil, err
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
	cr := &CompareResult{Mode: "aggregation", Target: compareTarget, Repeat: c.Repeat, Off: ModeSummary{Aggregation: false}, On: ModeSummary{Aggregation: true}}
	rulesFile := c.RulesFile
	if c.CompareRules {
		if rulesFile == "" {
			return nil, errors.New("-compare-rules needs -rules or -gen-rules")
		}
		cr.Mode, cr.Target = "rules", rulesCompareTarget
		cr.Off, cr.On = ModeSummary{Aggregation: true}, ModeSummary{Aggregation: true, Rules: true}
	}
	var runErr error
	cr.Runs, cr.Errors, runErr = runAlternating(ctx, c.Repeat, logf, func(i int) (config, string) {
		rc := c
		rc.Seed = c.Seed + uint64(i)
		on := i%2 == 1
		if c.CompareRules {
			rc.Aggregation = true
			if !on {
				rc.RulesFile = ""
			} else {
				rc.RulesFile = rulesFile
			}
		} else {
			rc.Aggregation = on
			rc.RulesFile = ""
			if !rc.Aggregation {
				rc.Freshness = nil // nothing becomes visible without aggregation
			}
		}
		return rc, fmt.Sprintf("%s %s", cr.Mode, onOff(on))
	})
	cr.summarise()
	return cr, runErr
}

// runAlternating makes 2*repeat runs, pausing comparePause between them;
// setup gives run i's configuration and what it is, for the log. It stops
// at the first failed run or when ctx ends, and returns the results (a
// failed run's too, when it has one), the failures as text, and the first
// failure.
func runAlternating(ctx context.Context, repeat int, logf func(string, ...any), setup func(i int) (config, string)) (runs []*Result, errs []string, runErr error) {
	for i := 0; i < 2*repeat && runErr == nil; i++ {
		if i > 0 {
			sleepUntil(ctx, time.Now().Add(comparePause))
		}
		if ctx.Err() != nil {
			return runs, errs, errors.New("interrupted")
		}
		rc, what := setup(i)
		logf("run %d of %d: %s", i+1, 2*repeat, what)
		res, err := run(ctx, rc, logf)
		if res != nil {
			runs = append(runs, res)
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("run %d (%s): %v", i+1, what, err))
			runErr = fmt.Errorf("run %d (%s): %w", i+1, what, err)
		}
	}
	return runs, errs, runErr
}

// isOn reports whether r is a run of the "on" mode.
func (cr *CompareResult) isOn(r *Result) bool {
	if cr.Mode == "rules" {
		return r.Rules != nil
	}
	return r.Aggregation
}

func (cr *CompareResult) summarise() {
	var fr []*FreshnessResult
	var rr []*RollupResult
	var lastOff *Result
	for _, r := range cr.Runs {
		m := &cr.Off
		if cr.isOn(r) {
			m = &cr.On
			if r.Freshness != nil {
				fr = append(fr, r.Freshness)
			}
			rr = append(rr, r.Rollup)
			if r.Rules != nil {
				cr.Rules = append(cr.Rules, r.Rules)
			}
			if lastOff != nil && lastOff.SpansPerSecond > 0 {
				cr.PairRatios = append(cr.PairRatios, r.SpansPerSecond/lastOff.SpansPerSecond)
				lastOff = nil
			}
		} else {
			lastOff = r
		}
		m.Runs++
		m.SpansPerSecond = append(m.SpansPerSecond, r.SpansPerSecond)
	}
	for _, m := range []*ModeSummary{&cr.Off, &cr.On} {
		var peak, sampled, anon, sAnon, sFile, gap, cores, p99 []float64
		for _, r := range cr.Runs {
			if cr.isOn(r) != (m == &cr.On) {
				continue
			}
			p99 = append(p99, r.LatencyP99Ms)
			if r.PeakRSSBytes != nil {
				peak = append(peak, float64(*r.PeakRSSBytes))
			}
			if r.MaxSampledRSSBytes != nil {
				sampled = append(sampled, float64(*r.MaxSampledRSSBytes))
			}
			if r.RSSAnonBytes != nil {
				anon = append(anon, float64(*r.RSSAnonBytes))
			}
			if r.ServerCores != nil {
				cores = append(cores, *r.ServerCores)
			}
			if r.MaxSampledAnon != nil {
				sAnon = append(sAnon, float64(*r.MaxSampledAnon))
			}
			if r.MaxSampledFile != nil {
				sFile = append(sFile, float64(*r.MaxSampledFile))
			}
			if r.Acks != nil {
				gap = append(gap, r.Acks.LongestGapMs)
			}
		}
		m.MedianSpansPerSecond = median(m.SpansPerSecond)
		m.MedianLatencyP99Ms = median(p99)
		m.MedianPeakRSSBytes = medianPtr(peak)
		m.MedianMaxSampledRSS = medianPtr(sampled)
		m.MedianRSSAnonBytes = medianPtr(anon)
		m.MedianServerCores = medianPtr(cores)
		m.MedianMaxSampledAnon = medianPtr(sAnon)
		m.MedianMaxSampledFile = medianPtr(sFile)
		m.MedianLongestAckGap = medianPtr(gap)
	}
	if cr.Off.MedianSpansPerSecond > 0 && cr.On.Runs > 0 {
		cr.Ratio = cr.On.MedianSpansPerSecond / cr.Off.MedianSpansPerSecond
		cr.WithinTarget = cr.Ratio >= cr.Target
	}
	cr.Freshness = mergeFreshness(fr)
	cr.Rollup = sumRollups(rr)
}

// median of xs (the mean of the middle two for an even count), 0 if empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

func medianPtr(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	m := median(xs)
	return &m
}

func (cr *CompareResult) printTable(w io.Writer) {
	for i, r := range cr.Runs {
		fmt.Fprintf(w, "== run %d of %d: %s %s\n", i+1, 2*cr.Repeat, cr.Mode, onOff(cr.isOn(r)))
		r.printTable(w)
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "== comparison (%d off/on pair(s), medians)\n", cr.Repeat)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	opt := func(p *float64, f func(float64) string) string {
		if p == nil {
			return "unknown"
		}
		return f(*p)
	}
	mibf := func(x float64) string { return mib(int64(x)) }
	runs := ""
	for i, r := range cr.Runs {
		if i > 0 {
			runs += ", "
		}
		other := "unknown"
		if r.OtherCores != nil {
			other = fmt.Sprintf("%.2f", *r.OtherCores)
		}
		runs += fmt.Sprintf("%s %.0f (other %s)", onOff(cr.isOn(r)), r.SpansPerSecond, other)
	}
	row("runs in order: spans/s (other processes' cores)", runs)
	for _, m := range []*ModeSummary{&cr.Off, &cr.On} {
		name := cr.Mode + " " + onOff(m == &cr.On)
		row(name+": spans/s", fmt.Sprintf("%.0f (median of %d)", m.MedianSpansPerSecond, m.Runs))
		row(name+": peak RSS (VmHWM)", opt(m.MedianPeakRSSBytes, mibf))
		row(name+": max sampled RSS / anon at end", opt(m.MedianMaxSampledRSS, mibf)+" / "+opt(m.MedianRSSAnonBytes, mibf))
		row(name+": max sampled RSS anon / file", opt(m.MedianMaxSampledAnon, mibf)+" / "+opt(m.MedianMaxSampledFile, mibf))
		row(name+": longest ack gap", opt(m.MedianLongestAckGap, func(x float64) string { return fmt.Sprintf("%.1f ms", x) }))
		row(name+": server cores / export p99", opt(m.MedianServerCores, func(x float64) string { return fmt.Sprintf("%.2f", x) })+
			fmt.Sprintf(" / %.1f ms", m.MedianLatencyP99Ms))
	}
	pr := ""
	for i, x := range cr.PairRatios {
		if i > 0 {
			pr += ", "
		}
		pr += strconv.FormatFloat(x, 'f', 3, 64)
	}
	verdict := "below target"
	if cr.WithinTarget {
		verdict = "within target"
	}
	row("throughput on / off", fmt.Sprintf("%.3f (%s ≥ %.2f; pairs: %s)", cr.Ratio, verdict, cr.Target, pr))
	if cr.Freshness != nil {
		row("freshness ("+cr.Mode+"-on runs pooled)", "")
		cr.Freshness.rows(row)
	}
	if cr.Rollup != nil {
		row("rollups ("+cr.Mode+"-on runs summed)", "")
		cr.Rollup.rows(row)
	}
	for i, r := range cr.Rules {
		row(fmt.Sprintf("alert rules, rules-on run %d", i+1), "")
		r.rows(row)
	}
	for _, e := range cr.Errors {
		row("error", e)
	}
	tw.Flush()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
