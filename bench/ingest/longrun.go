package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/metrics"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/flowscope/flowscope/bench/internal/benchproc"
)

// Long runs (-report-every, -blocks): while the load runs, a row every
// interval; after it, the window cut into equal blocks. Both are computed
// from the spans acknowledged per ackBucket (100 ms) of the window, counted
// by arrival time, so a 60-minute run keeps 36,000 counters and nothing per
// request.

// defaultBlocks is -blocks when -report-every is given.
const defaultBlocks = 6

// bucketsPerSecond is the number of ackBuckets in a second.
const bucketsPerSecond = int(time.Second / ackBucket)

// IntervalRow is what one -report-every interval of the measured window
// showed. Pointer fields are null when unknown (no collector process, no
// data directory).
type IntervalRow struct {
	ElapsedSeconds float64 `json:"elapsed_s"` // end of the interval, seconds after the window start
	Seconds        float64 `json:"seconds"`   // its length
	AckedSpans     int64   `json:"acked_spans"`
	SpansPerSecond float64 `json:"spans_per_second"` // AckedSpans / Seconds
	// MinSpansPerSecond is the fewest spans acknowledged in one whole
	// second of the interval (seconds counted from the window start): a
	// stall shows here while the interval's average hides it. Null when the
	// interval holds no whole second.
	MinSpansPerSecond *float64 `json:"min_1s_spans_per_second"`
	// The collector's resident set at the end of the interval
	// (/proc/PID/status RssAnon, RssFile, RssShmem), and the largest VmRSS
	// sampled during it.
	RSSAnonBytes  *int64 `json:"rss_anon_bytes"`
	RSSFileBytes  *int64 `json:"rss_file_bytes"`
	RSSShmemBytes *int64 `json:"rss_shmem_bytes"`
	PeakRSSBytes  *int64 `json:"peak_sampled_rss_bytes"`
	// ServerCPUSeconds is the collector's user+system CPU in the interval,
	// ServerCPUMicrosPerSpan that per acknowledged span.
	ServerCPUSeconds       *float64 `json:"server_cpu_seconds"`
	ServerCPUMicrosPerSpan *float64 `json:"server_cpu_us_per_span"`
	// DataDirBytes is the sum of the data directory's file sizes at the end
	// of the interval, DataDirAllocBytes the disk blocks they occupy (as du
	// counts them: sparse and preallocated files differ).
	DataDirBytes      *int64 `json:"data_dir_bytes"`
	DataDirAllocBytes *int64 `json:"data_dir_alloc_bytes"`
	// HarnessHeapBytes is this program's live Go heap (as of its last
	// garbage collection), to show that the harness itself does not grow
	// during a long run.
	HarnessHeapBytes uint64 `json:"harness_heap_bytes"`
}

// BlocksResult is the measured window cut into equal blocks (-blocks).
type BlocksResult struct {
	Blocks []BlockRow `json:"blocks"`
	// LastFirstRatio is the last block's spans/s over the first's: below 1
	// the collector slowed down as the store grew.
	LastFirstRatio *float64 `json:"last_first_ratio"`
}

// BlockRow is one block of the window.
type BlockRow struct {
	StartSeconds   float64 `json:"start_s"` // seconds after the window start
	EndSeconds     float64 `json:"end_s"`
	AckedSpans     int64   `json:"acked_spans"`
	SpansPerSecond float64 `json:"spans_per_second"`
}

// intervalSpans sums spans (per ackBucket) over buckets [from, to) and
// returns the smallest sum over the whole seconds inside (second k is
// buckets [10k, 10k+10)); ok is false when there is none.
func intervalSpans(spans []int64, from, to int) (total int64, min1s int64, ok bool) {
	to = min(to, len(spans))
	for i := max(from, 0); i < to; i++ {
		total += spans[i]
	}
	min1s = math.MaxInt64
	for k := (from + bucketsPerSecond - 1) / bucketsPerSecond; (k+1)*bucketsPerSecond <= to; k++ {
		var s int64
		for _, n := range spans[k*bucketsPerSecond : (k+1)*bucketsPerSecond] {
			s += n
		}
		min1s, ok = min(min1s, s), true
	}
	if !ok {
		min1s = 0
	}
	return total, min1s, ok
}

// splitBlocks cuts the first whole buckets of spans into n blocks of equal
// whole buckets, the remainder (fewer than n buckets) going to the last
// block; nil when there are fewer buckets than blocks.
func splitBlocks(spans []int64, whole, n int) *BlocksResult {
	whole = min(whole, len(spans))
	if n < 1 || whole < n {
		return nil
	}
	per := whole / n
	res := &BlocksResult{}
	for i := range n {
		from, to := i*per, (i+1)*per
		if i == n-1 {
			to = whole
		}
		var s int64
		for _, x := range spans[from:to] {
			s += x
		}
		secs := float64(to-from) * ackBucket.Seconds()
		res.Blocks = append(res.Blocks, BlockRow{
			StartSeconds: float64(from) * ackBucket.Seconds(), EndSeconds: float64(to) * ackBucket.Seconds(),
			AckedSpans: s, SpansPerSecond: float64(s) / secs,
		})
	}
	if first, last := res.Blocks[0].SpansPerSecond, res.Blocks[n-1].SpansPerSecond; first > 0 {
		r := last / first
		res.LastFirstRatio = &r
	}
	return res
}

// intervalEnds returns the ends of the -report-every intervals of a window
// of length d, as offsets from its start: every, 2·every, …, and d itself
// when it is not a multiple.
func intervalEnds(d, every time.Duration) []time.Duration {
	if every <= 0 || d <= 0 {
		return nil
	}
	var out []time.Duration
	for t := every; t < d; t += every {
		out = append(out, t)
	}
	return append(out, d)
}

// reporter writes an IntervalRow every -report-every while the load runs.
type reporter struct {
	every            time.Duration
	pid              int
	dataDir          string
	rss              *rssSampler
	acks             *ackRecorder
	winStart, winEnd time.Time
	out              io.Writer
	rows             []IntervalRow
	done             chan struct{}
}

// startReporter starts the rows (printed to out as they come); wait
// returns them.
func startReporter(ctx context.Context, every time.Duration, pid int, dataDir string, rss *rssSampler, acks *ackRecorder,
	winStart, winEnd time.Time, out io.Writer) *reporter {
	rp := &reporter{every: every, pid: pid, dataDir: dataDir, rss: rss, acks: acks, winStart: winStart, winEnd: winEnd, out: out, done: make(chan struct{})}
	go rp.run(ctx)
	return rp
}

// run writes the rows until the window ends (or ctx does).
func (rp *reporter) run(ctx context.Context) {
	defer close(rp.done)
	sleepUntil(ctx, rp.winStart)
	cpuPrev, cpuErr := benchproc.ProcCPUSeconds(rp.pid)
	rp.rss.takeIntervalPeak()
	fmt.Fprintf(rp.out, "ingest: %9s %9s %9s %8s %7s %21s %8s %19s %8s\n", "elapsed", "spans/s", "min 1s", "CPU s", "µs/span",
		"RSS anon/file/shm MiB", "peak MiB", "data dir MiB (du)", "heap MiB")
	var prev time.Duration
	for _, end := range intervalEnds(rp.winEnd.Sub(rp.winStart), rp.every) {
		sleepUntil(ctx, rp.winStart.Add(end))
		if ctx.Err() != nil {
			return
		}
		row := IntervalRow{ElapsedSeconds: end.Seconds(), Seconds: (end - prev).Seconds()}
		spans := rp.acks.spansPerBucket()
		total, min1s, ok := intervalSpans(spans, int(prev/ackBucket), int(end/ackBucket))
		row.AckedSpans = total
		row.SpansPerSecond = float64(total) / row.Seconds
		if ok {
			m := float64(min1s)
			row.MinSpansPerSecond = &m
		}
		if rp.pid > 0 {
			if cpu, err := benchproc.ProcCPUSeconds(rp.pid); err == nil && cpuErr == nil {
				d := cpu - cpuPrev
				row.ServerCPUSeconds = &d
				if total > 0 {
					us := d * 1e6 / float64(total)
					row.ServerCPUMicrosPerSpan = &us
				}
				cpuPrev = cpu
			}
			if st, err := benchproc.ReadProcStatus(rp.pid); err == nil {
				a, f, s := st["RssAnon"], st["RssFile"], st["RssShmem"]
				row.RSSAnonBytes, row.RSSFileBytes, row.RSSShmemBytes = &a, &f, &s
			}
			if p := rp.rss.takeIntervalPeak(); p > 0 {
				row.PeakRSSBytes = &p
			}
		}
		if rp.dataDir != "" {
			if size, alloc, err := dirSize(rp.dataDir); err == nil {
				row.DataDirBytes, row.DataDirAllocBytes = &size, &alloc
			}
		}
		row.HarnessHeapBytes = harnessHeap()
		rp.rows = append(rp.rows, row)
		fmt.Fprintln(rp.out, "ingest: "+row.line())
		prev = end
	}
}

// wait waits for the last row and returns the rows.
func (rp *reporter) wait() []IntervalRow {
	<-rp.done
	return rp.rows
}

// line formats the row as printed live, under the reporter's header.
func (r IntervalRow) line() string {
	f := optFloat
	m := func(p *int64) string { return optMiB(p, "%.0f") }
	return fmt.Sprintf("%8.0fs %9.0f %9s %8s %7s %21s %8s %19s %8.0f", r.ElapsedSeconds, r.SpansPerSecond, f(r.MinSpansPerSecond, "%.0f"),
		f(r.ServerCPUSeconds, "%.1f"), f(r.ServerCPUMicrosPerSpan, "%.2f"),
		m(r.RSSAnonBytes)+"/"+m(r.RSSFileBytes)+"/"+m(r.RSSShmemBytes), m(r.PeakRSSBytes),
		m(r.DataDirBytes)+" ("+m(r.DataDirAllocBytes)+")", float64(r.HarnessHeapBytes)/(1<<20))
}

// optFloat formats an optional number, "-" when absent.
func optFloat(p *float64, format string) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf(format, *p)
}

// optMiB formats an optional byte count in MiB, "-" when absent.
func optMiB(p *int64, format string) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf(format, float64(*p)/(1<<20))
}

// printIntervals prints the interval rows and the blocks as tables.
func printIntervals(w io.Writer, rows []IntervalRow, b *BlocksResult) {
	if len(rows) > 0 {
		fmt.Fprintln(w, "\nintervals (spans acknowledged by arrival time; RSS at the interval's end; data dir: file sizes (allocated blocks)):")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "elapsed\tspans/s\tmin 1s spans/s\tserver CPU s\tCPU µs/span\tRSS anon MiB\tRSS file MiB\tRSS shmem MiB\tpeak RSS MiB\tdata dir MiB\tallocated MiB\tharness heap MiB\t")
		f := optFloat
		m := func(p *int64) string { return optMiB(p, "%.1f") }
		for _, r := range rows {
			fmt.Fprintf(tw, "%.0f s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t\n", r.ElapsedSeconds, r.SpansPerSecond, f(r.MinSpansPerSecond, "%.0f"),
				f(r.ServerCPUSeconds, "%.1f"), f(r.ServerCPUMicrosPerSpan, "%.2f"), m(r.RSSAnonBytes), m(r.RSSFileBytes), m(r.RSSShmemBytes),
				m(r.PeakRSSBytes), m(r.DataDirBytes), m(r.DataDirAllocBytes), float64(r.HarnessHeapBytes)/(1<<20))
		}
		tw.Flush()
	}
	if b != nil {
		fmt.Fprintf(w, "\nblocks (the measured window in %d equal parts):\n", len(b.Blocks))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "block\tfrom\tto\tacked spans\tspans/s\t")
		for i, r := range b.Blocks {
			fmt.Fprintf(tw, "%d\t%.1f s\t%.1f s\t%d\t%.0f\t\n", i+1, r.StartSeconds, r.EndSeconds, r.AckedSpans, r.SpansPerSecond)
		}
		tw.Flush()
		ratio := "unknown"
		if b.LastFirstRatio != nil {
			ratio = fmt.Sprintf("%.3f", *b.LastFirstRatio)
		}
		fmt.Fprintf(w, "last block / first block: %s\n", ratio)
	}
}

// harnessHeap returns the live heap of this process as of the last garbage
// collection (runtime/metrics /gc/heap/live:bytes).
func harnessHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// dirSize returns the sum of the sizes of the regular files under dir and
// the disk space they occupy (st_blocks × 512, as du counts it).
func dirSize(dir string) (size, alloc int64, err error) {
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) { // removed while walking (a rotated file)
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		size += fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			alloc += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("size of %s: %w", dir, err)
	}
	return size, alloc, nil
}
