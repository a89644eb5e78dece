package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// Result is what one run measured. Pointer fields are null when unknown
// (for example disk and RSS when targeting a collector started elsewhere).
type Result struct {
	Target          string `json:"target"`      // "subprocess" or the -addr
	Collector       string `json:"collector"`   // binary path, when started here
	Server          string `json:"server"`      // "flowscope", or "discard" (the decode-and-discard server of -vs-discard)
	Shape           string `json:"shape"`       // -shape: "small" or "realistic"
	Aggregation     bool   `json:"aggregation"` // --aggregation given to the collector (as told by -aggregation with -addr)
	Clients         int    `json:"clients"`     // concurrent senders
	Conns           int    `json:"conns"`       // gRPC connections
	SpansPerRequest int    `json:"spans_per_request"`
	RequestBytes    int    `json:"request_bytes"` // encoded size of one request
	// EncodedBytesPerSpan is the templates' size over their spans.
	EncodedBytesPerSpan float64 `json:"encoded_bytes_per_span"`
	WarmupSeconds       float64 `json:"warmup_seconds"`   // sending time not measured
	MeasuredSeconds     float64 `json:"measured_seconds"` // the window spans/s is computed over

	AckedSpans      int64   `json:"acked_spans"`       // spans acknowledged (export OK) inside the window
	SpansPerSecond  float64 `json:"spans_per_second"`  // AckedSpans / MeasuredSeconds
	AckedSpansTotal int64   `json:"acked_spans_total"` // including warm-up and the drain after the window
	RequestsOK      int64   `json:"requests_ok"`       // export calls that returned OK (whole run)
	RequestsRefused int64   `json:"requests_refused"`  // RESOURCE_EXHAUSTED or UNAVAILABLE (whole run)
	RequestsFailed  int64   `json:"requests_failed"`   // any other error (whole run)
	SpansRejected   int64   `json:"spans_rejected"`    // partial_success.rejected_spans (whole run)
	FirstError      string  `json:"first_error,omitempty"`
	LatencyP50Ms    float64 `json:"latency_p50_ms"` // export latency of OK calls in the window
	LatencyP99Ms    float64 `json:"latency_p99_ms"`
	LatencyMaxMs    float64 `json:"latency_max_ms"`
	// Acks tells how evenly acknowledgements arrived in the window: the
	// longest gap without any, and the 100 ms buckets without any.
	Acks *AckStats `json:"acks"`

	DBFileBytes  *int64 `json:"db_file_bytes"`  // size of flowscope.db after shutdown
	DataDirBytes *int64 `json:"data_dir_bytes"` // every file in the data directory: the sum of their sizes
	// DataDirAllocBytes is the disk space those files occupy (allocated
	// blocks, as du counts them).
	DataDirAllocBytes *int64   `json:"data_dir_alloc_bytes"`
	BytesPerSpan      *float64 `json:"bytes_per_span"` // DBFileBytes / AckedSpansTotal

	PeakRSSBytes       *int64   `json:"peak_rss_bytes"`              // VmHWM of the collector, read before it stops
	MaxSampledRSSBytes *int64   `json:"max_sampled_rss_bytes"`       // largest VmRSS seen while sampling
	MaxSampledAnon     *int64   `json:"max_sampled_rss_anon_bytes"`  // largest RssAnon seen while sampling
	MaxSampledFile     *int64   `json:"max_sampled_rss_file_bytes"`  // largest RssFile seen while sampling
	MaxSampledShmem    *int64   `json:"max_sampled_rss_shmem_bytes"` // largest RssShmem seen while sampling
	RSSAnonBytes       *int64   `json:"rss_anon_bytes"`              // RssAnon (heap, stacks) at the end of the load
	RSSFileBytes       *int64   `json:"rss_file_bytes"`              // RssFile (mapped files: the bbolt mmap, the binary) at the end
	ServerCPUSeconds   *float64 `json:"server_cpu_seconds"`          // collector user+system CPU in the window
	ClientCPUSeconds   float64  `json:"client_cpu_seconds"`          // this process's user+system CPU in the window
	ServerCores        *float64 `json:"server_cores"`                // ServerCPUSeconds / MeasuredSeconds
	// ServerCPUMicrosPerSpan is ServerCPUSeconds per span acknowledged
	// in the window, in µs.
	ServerCPUMicrosPerSpan *float64 `json:"server_cpu_us_per_span"`
	ClientCores            float64  `json:"client_cores"`
	// OtherCores is the CPU the rest of the machine used in the window:
	// busy time of all CPUs (/proc/stat) less the collector's and the
	// harness's, per second. With -addr and no -pid it includes the
	// collector. Anything well above 0 means the run competed for the cores.
	OtherCores  *float64 `json:"other_cores"`
	MachineCPUs int      `json:"machine_cpus"` // CPUs online

	LoadAvgBefore string `json:"loadavg_before"` // /proc/loadavg before the load: other work on the machine skews results
	LoadAvgAfter  string `json:"loadavg_after"`

	ServerAcceptedSpans *int64 `json:"server_accepted_spans"` // the collector's flowscope_store_items_total{signal="traces",outcome="accepted"}; the discard server's span count

	Freshness *FreshnessResult `json:"freshness"` // markers: acknowledged → visible; null when not measured
	Rollup    *RollupResult    `json:"rollup"`    // rollup records written, from /metrics before shutdown; null when unknown
	// Rules is the alert rules' status after the load; null when the
	// collector ran without rules (-rules, -gen-rules, -compare-rules).
	Rules *RulesResult `json:"rules"`
	// TopologyEdges is how many edges the topology sender (-edges) gave
	// the flow graph, with one call each per second (not in spans/s);
	// TopologyRequests of its requests were acknowledged.
	TopologyEdges    int    `json:"topology_edges"`
	TopologyRequests int64  `json:"topology_requests"`
	TopologyError    string `json:"topology_error,omitempty"`

	ReadBack        *bool    `json:"read_back"`        // an acknowledged trace was found by ID after the run
	ShutdownSeconds *float64 `json:"shutdown_seconds"` // SIGTERM to exit
	ExitCode        *int     `json:"exit_code"`        // collector exit status
	ErrorLogs       *int     `json:"error_logs"`       // collector log lines at level ERROR
	DataDir         string   `json:"data_dir,omitempty"`

	// Intervals are the -report-every rows, in order (empty when off).
	Intervals []IntervalRow `json:"intervals,omitempty"`
	// Blocks is the window cut into -blocks parts (null when off).
	Blocks *BlocksResult `json:"blocks"`
	// Restart is what -restart measured (null without).
	Restart *RestartResult `json:"restart"`
}

func (r *Result) printTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	unknown := "unknown"
	i64 := func(p *int64, f func(int64) string) string {
		if p == nil {
			return unknown
		}
		return f(*p)
	}
	f64 := func(p *float64, f string) string {
		if p == nil {
			return unknown
		}
		return fmt.Sprintf(f, *p)
	}
	row("target", r.Target+" "+r.Collector)
	if r.Server != "" {
		row("server", r.Server)
	}
	if r.Server == serverDiscard {
		row("aggregation", "n/a (decode-and-discard server)")
	} else {
		row("aggregation", strconv.FormatBool(r.Aggregation))
	}
	row("clients / conns", fmt.Sprintf("%d / %d", r.Clients, r.Conns))
	row("span shape", r.Shape)
	row("spans per request", fmt.Sprintf("%d (%d bytes encoded, %.1f bytes/span)", r.SpansPerRequest, r.RequestBytes, r.EncodedBytesPerSpan))
	row("warm-up / measured", fmt.Sprintf("%.1f s / %.1f s", r.WarmupSeconds, r.MeasuredSeconds))
	row("acknowledged spans", fmt.Sprintf("%d in window, %d in total", r.AckedSpans, r.AckedSpansTotal))
	row("spans/s (acknowledged)", fmt.Sprintf("%.0f", r.SpansPerSecond))
	row("requests ok / refused / failed", fmt.Sprintf("%d / %d / %d", r.RequestsOK, r.RequestsRefused, r.RequestsFailed))
	if r.SpansRejected > 0 {
		row("spans rejected (partial)", strconv.FormatInt(r.SpansRejected, 10))
	}
	if r.FirstError != "" {
		row("first error", r.FirstError)
	}
	row("export latency p50 / p99 / max", fmt.Sprintf("%.1f / %.1f / %.1f ms", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs))
	r.Acks.rows(row)
	row("flowscope.db size", i64(r.DBFileBytes, mib))
	row("data dir size (file sizes / allocated)", i64(r.DataDirBytes, mib)+" / "+i64(r.DataDirAllocBytes, mib))
	row("bytes on disk per span", f64(r.BytesPerSpan, "%.1f"))
	row("peak RSS (VmHWM)", i64(r.PeakRSSBytes, mib))
	row("max sampled RSS", i64(r.MaxSampledRSSBytes, mib))
	row("max sampled RSS anon / file / shmem", i64(r.MaxSampledAnon, mib)+" / "+i64(r.MaxSampledFile, mib)+" / "+i64(r.MaxSampledShmem, mib))
	row("RSS anon / file at the end", i64(r.RSSAnonBytes, mib)+" / "+i64(r.RSSFileBytes, mib))
	row("server CPU in window", f64(r.ServerCPUSeconds, "%.1f s")+" ("+f64(r.ServerCores, "%.2f cores")+", "+f64(r.ServerCPUMicrosPerSpan, "%.2f µs/span")+")")
	row("client CPU in window", fmt.Sprintf("%.1f s (%.2f cores)", r.ClientCPUSeconds, r.ClientCores))
	row("other processes' CPU in window", f64(r.OtherCores, "%.2f cores")+fmt.Sprintf(" (of %d CPUs)", r.MachineCPUs))
	rb := unknown
	if r.ReadBack != nil {
		rb = strconv.FormatBool(*r.ReadBack)
	}
	accepted := "spans accepted by the store (self-metric)"
	if r.Server == serverDiscard {
		accepted = "spans counted by the discard server"
	}
	row(accepted, i64(r.ServerAcceptedSpans, func(n int64) string { return strconv.FormatInt(n, 10) }))
	row("load average before / after", r.LoadAvgBefore+" / "+r.LoadAvgAfter)
	r.Freshness.rows(row)
	r.Rollup.rows(row)
	if r.TopologyEdges > 0 {
		row("topology edges / requests acked", fmt.Sprintf("%d / %d", r.TopologyEdges, r.TopologyRequests))
	}
	if r.TopologyError != "" {
		row("topology first error", r.TopologyError)
	}
	r.Rules.rows(row)
	row("acked trace read back", rb)
	row("shutdown", f64(r.ShutdownSeconds, "%.2f s"))
	ec, el := unknown, unknown
	if r.ExitCode != nil {
		ec = strconv.Itoa(*r.ExitCode)
	}
	if r.ErrorLogs != nil {
		el = strconv.Itoa(*r.ErrorLogs)
	}
	row("collector exit code / error logs", ec+" / "+el)
	if r.DataDir != "" {
		row("data dir (kept)", r.DataDir)
	}
	r.Restart.rows(row)
	tw.Flush()
	printIntervals(w, r.Intervals, r.Blocks)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n) }
