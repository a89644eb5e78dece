package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is the whole benchmark, as -json writes it.
type Result struct {
	Started          time.Time   `json:"started"`
	CPUs             int         `json:"cpus"`
	Duration         string      `json:"duration"`
	Conns            int         `json:"conns"`
	Pool             int         `json:"poolRequests"`
	TracesPerRequest int         `json:"tracesPerRequest"`
	QueueSize        int         `json:"otelcolQueueSize"`
	Consumers        int         `json:"otelcolConsumers"`
	Otelcol          string      `json:"otelcolBin"`
	Collector        string      `json:"collectorBin"`
	Runs             []RunResult `json:"runs"`
}

// RunResult is one cluster size's run.
type RunResult struct {
	Nodes         int    `json:"nodes"`
	CollectorAddr string `json:"otelcolAddr"`
	PoolSpans     int    `json:"poolSpans"`

	// The load: calls made, spans acknowledged (less partial-success
	// rejections), calls refused as overloaded, calls failed otherwise.
	LoadSeconds   float64 `json:"loadSeconds"`
	Requests      int64   `json:"requests"`
	Acked         int64   `json:"ackedSpans"`
	AckedPerSec   float64 `json:"ackedSpansPerSec"`
	RejectedSpans int64   `json:"rejectedSpans"`
	Refused       int64   `json:"refusedCalls"`
	FirstRefusal  string  `json:"firstRefusal,omitempty"`
	Failed        int64   `json:"failedCalls"`
	FirstError    string  `json:"firstError,omitempty"`

	// The drain: from the end of the load until the nodes' total reached
	// its final value; Stored is that total, DeliveredPerSec it over the
	// load and the drain, Short how many acknowledged spans are missing.
	DrainSeconds    float64 `json:"drainSeconds"`
	Stored          int64   `json:"storedSpans"`
	DeliveredPerSec float64 `json:"deliveredSpansPerSec"`
	Short           int64   `json:"shortSpans"`

	PerNode   []NodeResult `json:"perNode"`
	AllNodes  ProcCPU      `json:"allNodes"`
	Otelcol   ProcCPU      `json:"otelcol"`
	Generator ProcCPU      `json:"generator"`
	// MachineBusy is the machine's busy CPU seconds over load and drain,
	// BusyFraction that over wall time × cores.
	MachineBusy  float64 `json:"machineBusySeconds"`
	BusyFraction float64 `json:"machineBusyFraction"`
	// OthersBusy is MachineBusy less the CPU of the nodes, the Collector
	// and the generator: other work on the machine (the noise).
	OthersBusy float64 `json:"othersBusySeconds"`
	// NodeCapacityPerCore is 1e6 / AllNodes.MicrosPerSpan: the spans/s a
	// node could store on one core of its own at the measured cost.
	NodeCapacityPerCore      float64 `json:"nodeCapacityPerCore"`
	CollectorCapacityPerCore float64 `json:"otelcolCapacityPerCore"`

	LoadAvgBefore       string   `json:"loadAvgBefore"`
	LoadAvgAfter        string   `json:"loadAvgAfter"`
	CollectorErrorLogs  int      `json:"otelcolErrorLogs"`
	CollectorFirstError string   `json:"otelcolFirstError,omitempty"`
	Problems            []string `json:"problems,omitempty"`
}

// NodeResult is one node's share and cost.
type NodeResult struct {
	Name      string  `json:"name"`
	PID       int     `json:"pid"`
	OTLPGRPC  string  `json:"otlpGrpc"`
	HTTP      string  `json:"http"`
	Stored    int64   `json:"storedSpans"`
	Share     float64 `json:"share"`
	ExitCode  int     `json:"exitCode"`
	ErrorLogs int     `json:"errorLogs"`
	Problem   string  `json:"problem,omitempty"`
	ProcCPU
}

// ProcCPU is a process's CPU seconds during the load and during the
// drain, and their sum per span (µs).
type ProcCPU struct {
	CPULoad       float64 `json:"cpuSecondsLoad"`
	CPUDrain      float64 `json:"cpuSecondsDrain"`
	MicrosPerSpan float64 `json:"cpuMicrosPerSpan"`
}

// total is the CPU seconds of load and drain.
func (p ProcCPU) total() float64 { return p.CPULoad + p.CPUDrain }

// procCPU makes a ProcCPU from three readings and a span count.
func procCPU(a, b, c float64, spans int64) ProcCPU {
	p := ProcCPU{CPULoad: b - a, CPUDrain: c - b}
	if spans > 0 {
		p.MicrosPerSpan = p.total() / float64(spans) * 1e6
	}
	return p
}

// fill computes the figures from the CPU samples at the start and end of
// the load and at the end of the drain, the nodes' span counts and the
// machine's number of cores.
func (rr *RunResult) fill(s0, s1, s2 cpuSample, counts []int64, cpus float64) {
	rr.Stored = 0
	for _, c := range counts {
		rr.Stored += c
	}
	wall := s2.at.Sub(s0.at).Seconds()
	if wall > 0 {
		rr.DeliveredPerSec = float64(rr.Stored) / wall
		rr.MachineBusy = s2.mach - s0.mach
		rr.BusyFraction = rr.MachineBusy / (wall * cpus)
	}
	rr.Short = max(rr.Acked-rr.Stored, 0)
	var nl, nd float64
	for i := range rr.PerNode {
		if i >= len(counts) || i >= len(s0.nodes) {
			break
		}
		nr := &rr.PerNode[i]
		nr.Stored = counts[i]
		if rr.Stored > 0 {
			nr.Share = float64(nr.Stored) / float64(rr.Stored)
		}
		nr.ProcCPU = procCPU(s0.nodes[i], s1.nodes[i], s2.nodes[i], nr.Stored)
		nl += nr.CPULoad
		nd += nr.CPUDrain
	}
	rr.AllNodes = procCPU(0, nl, nl+nd, rr.Stored)
	rr.Otelcol = procCPU(s0.col, s1.col, s2.col, rr.Stored)
	rr.Generator = procCPU(s0.self, s1.self, s2.self, rr.Acked)
	if rr.AllNodes.MicrosPerSpan > 0 {
		rr.NodeCapacityPerCore = 1e6 / rr.AllNodes.MicrosPerSpan
	}
	rr.OthersBusy = rr.MachineBusy - rr.AllNodes.total() - rr.Otelcol.total() - rr.Generator.total()
	if rr.Otelcol.MicrosPerSpan > 0 {
		rr.CollectorCapacityPerCore = 1e6 / rr.Otelcol.MicrosPerSpan
	}
}

// num formats n with thousands separators.
func num[T int | int64](n T) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// rate formats a spans/s figure to whole spans with separators.
func rate(f float64) string { return num(int64(f + 0.5)) }

// printRun writes one run's table.
func printRun(w io.Writer, r *RunResult, res *Result) {
	fmt.Fprintf(w, "\n== %d node(s) behind the Collector: %.1f s of load from %d streams, then %.1f s until stored\n",
		r.Nodes, r.LoadSeconds, res.Conns, r.DrainSeconds)
	fmt.Fprintf(w, "acknowledged  %s spans  %s spans/s over the load\n", num(r.Acked), rate(r.AckedPerSec))
	fmt.Fprintf(w, "stored        %s spans  %s spans/s over load + drain", num(r.Stored), rate(r.DeliveredPerSec))
	switch {
	case r.Short > 0:
		fmt.Fprintf(w, "  SHORT by %s acknowledged spans\n", num(r.Short))
	case r.Stored > r.Acked:
		fmt.Fprintf(w, "  (%s more than acknowledged: parts of refused calls)\n", num(r.Stored-r.Acked))
	default:
		fmt.Fprintf(w, "  (every acknowledged span)\n")
	}
	fmt.Fprintf(w, "calls         %s, %s refused (Collector queues full), %s failed", num(r.Requests), num(r.Refused), num(r.Failed))
	if r.RejectedSpans > 0 {
		fmt.Fprintf(w, ", %s spans rejected", num(r.RejectedSpans))
	}
	fmt.Fprintln(w)
	if r.FirstRefusal != "" {
		fmt.Fprintf(w, "first refusal %.200s\n", r.FirstRefusal)
	}
	if r.FirstError != "" {
		fmt.Fprintf(w, "first failure %.200s\n", r.FirstError)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "process\tspans\tshare\tCPU s (load)\tCPU s (drain)\tCPU µs/span\t")
	for _, nr := range r.PerNode {
		fmt.Fprintf(tw, "%s\t%s\t%.1f%%\t%.2f\t%.2f\t%.2f\t\n", nr.Name, num(nr.Stored), 100*nr.Share, nr.CPULoad, nr.CPUDrain, nr.MicrosPerSpan)
	}
	if len(r.PerNode) > 1 {
		fmt.Fprintf(tw, "all nodes\t%s\t\t%.2f\t%.2f\t%.2f\t\n", num(r.Stored), r.AllNodes.CPULoad, r.AllNodes.CPUDrain, r.AllNodes.MicrosPerSpan)
	}
	fmt.Fprintf(tw, "Collector\t%s\t\t%.2f\t%.2f\t%.2f\t\n", num(r.Stored), r.Otelcol.CPULoad, r.Otelcol.CPUDrain, r.Otelcol.MicrosPerSpan)
	fmt.Fprintf(tw, "generator\t%s acked\t\t%.2f\t%.2f\t%.2f\t\n", num(r.Acked), r.Generator.CPULoad, r.Generator.CPUDrain, r.Generator.MicrosPerSpan)
	tw.Flush()
	fmt.Fprintf(w, "machine       %.1f busy CPU s of %.1f (%d cores × %.1f s): %.0f%% busy, %.1f s of it other work; load average %s before, %s after\n",
		r.MachineBusy, float64(res.CPUs)*(r.LoadSeconds+r.DrainSeconds), res.CPUs, r.LoadSeconds+r.DrainSeconds,
		100*r.BusyFraction, max(r.OthersBusy, 0), r.LoadAvgBefore, r.LoadAvgAfter)
	if r.NodeCapacityPerCore > 0 {
		fmt.Fprintf(w, "per-node capacity ≈ 1e6 / %.2f µs per span ≈ %s spans/s per core", r.AllNodes.MicrosPerSpan, rate(r.NodeCapacityPerCore))
		if r.CollectorCapacityPerCore > 0 {
			fmt.Fprintf(w, " (the Collector: ≈ %s spans/s per core)", rate(r.CollectorCapacityPerCore))
		}
		fmt.Fprintln(w)
	}
	if r.CollectorErrorLogs > 0 {
		fmt.Fprintf(w, "Collector     %d error log lines; the first: %.300s\n", r.CollectorErrorLogs, r.CollectorFirstError)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "problem       %s\n", p)
	}
}

// printSummary writes every run's table, the comparison and what the
// machine can show.
func printSummary(w io.Writer, res *Result) {
	for i := range res.Runs {
		printRun(w, &res.Runs[i], res)
	}
	fmt.Fprintf(w, "\n== Comparison (%s of load per run, %d streams, %d traces per request)\n", res.Duration, res.Conns, res.TracesPerRequest)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "nodes\tacked/s\tstored/s\tvs first\tnode µs/span\tCollector µs/span\tgenerator µs/span\tmachine busy\tnode spans/s per core\t")
	base := res.Runs[0].DeliveredPerSec
	for _, r := range res.Runs {
		vs := "-"
		if base > 0 {
			vs = fmt.Sprintf("%.2f×", r.DeliveredPerSec/base)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.2f\t%.2f\t%.2f\t%.0f%%\t%s\t\n", r.Nodes, rate(r.AckedPerSec), rate(r.DeliveredPerSec), vs,
			r.AllNodes.MicrosPerSpan, r.Otelcol.MicrosPerSpan, r.Generator.MicrosPerSpan, 100*r.BusyFraction, rate(r.NodeCapacityPerCore))
	}
	tw.Flush()
	nodes, times := "several nodes", "N×"
	if n := largest(res); n > 1 {
		nodes, times = fmt.Sprintf("%d nodes", n), fmt.Sprintf("%d×", n)
	}
	fmt.Fprintf(w, `
What this machine can show: it has %d core(s), and the Collector, the load
generator and all %s share them, so %s cannot show %s the
throughput of one: once the cores are busy, stored spans/s is bounded by
the machine, not by the number of nodes, and more nodes only add their
overheads. What carries over to a cluster of real hosts is the CPU cost
per span: a node with a core of its own would store about
1e6 / (node CPU µs per span) spans/s ("node spans/s per core" above), and
N such nodes about N times that, if the Collector (1e6 / its µs per span
spans/s per core of its own) and the senders are sized to feed them.
`, res.CPUs, nodes, nodes, times)
}

// largest is the largest cluster size of the runs.
func largest(res *Result) int {
	most := 1
	for _, r := range res.Runs {
		most = max(most, r.Nodes)
	}
	return most
}
