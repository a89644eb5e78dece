package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"

	"github.com/flowscope/flowscope/bench/internal/benchproc"
)

// run performs one benchmark run. It returns a partial result with an error
// when the run could not complete cleanly.
func run(ctx context.Context, c config, logf func(string, ...any)) (*Result, error) {
	c, fresh, err := c.normalized()
	if err != nil {
		return nil, err
	}
	res := &Result{Server: serverFlowscope, Shape: c.Shape, Clients: c.Clients, Conns: c.Conns, SpansPerRequest: c.SpansPerRequest, Aggregation: c.Aggregation}
	if c.discard {
		res.Server = serverDiscard
	}
	tg, cleanup, err := startTarget(ctx, c, res, logf)
	if err != nil {
		return nil, err
	}
	defer cleanup()

	logf("encoding %d %s requests of %d spans", c.Pool, c.Shape, c.SpansPerRequest)
	templates, err := buildShapeTemplates(c.Shape, c.Pool, c.SpansPerRequest, c.Seed)
	if err != nil {
		return nil, err
	}
	res.SpansPerRequest = templates[0].spans
	res.RequestBytes = len(templates[0].raw)
	res.EncodedBytesPerSpan = bytesPerSpan(templates)
	logf("templates: %.1f bytes/span encoded on average (%d bytes in the first request)", res.EncodedBytesPerSpan, res.RequestBytes)
	conns, err := dial(tg.grpcAddr, c.Conns)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, cc := range conns {
			cc.Close()
		}
	}()

	rss := startRSSSampler(tg.pid)
	clients, rec, err := sendLoad(ctx, c, tg, templates, conns, fresh, rss, res, logf)
	if err != nil {
		rss.stop()
		return nil, err
	}
	res.addClients(clients, rec)
	switch {
	case tg.discard:
		if n, err := discardSpans(tg.httpAddr); err != nil {
			logf("%v", err)
		} else {
			res.ServerAcceptedSpans = &n
		}
	case tg.httpAddr != "":
		readBack(c, tg, clients, res, logf)
	}
	rss.stop()
	res.addMemory(tg.pid, rss)
	var runErr error
	if c.Restart {
		runErr = restartBench(ctx, c, tg, clients, res, logf)
	} else {
		runErr = tg.stopCollector(res)
	}
	res.addDisk(tg.dataDir)
	return res, verdict(ctx, res, tg.proc != nil, runErr)
}

// The servers a run measures (Result.Server).
const (
	serverFlowscope = "flowscope"
	serverDiscard   = "discard"
)

// normalized checks c and fills in its derived defaults (connections,
// seed); fresh tells whether freshness markers are sent.
func (c config) normalized() (config, bool, error) {
	if c.Clients < 1 || c.Duration <= 0 || c.Warmup < 0 || c.Pool < 1 || c.MaxRequests < 1 {
		return c, false, errors.New("need -clients >= 1, -duration > 0, -warmup >= 0, -pool >= 1, -max-requests >= 1")
	}
	if c.Conns <= 0 {
		c.Conns = (c.Clients + 3) / 4
	}
	if c.Conns > c.Clients {
		c.Conns = c.Clients
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	switch c.Shape {
	case "":
		c.Shape = shapeSmall
	case shapeSmall, shapeRealistic:
	default:
		return c, false, fmt.Errorf("unknown -shape %q: want %s or %s", c.Shape, shapeSmall, shapeRealistic)
	}
	if c.SpansPerRequest <= 0 {
		c.SpansPerRequest = defaultSmallSpans
		if c.Shape == shapeRealistic {
			c.SpansPerRequest = defaultRealisticSpans
		}
	}
	if c.ReportEvery < 0 || (c.ReportEvery > 0 && (c.ReportEvery < time.Second || c.ReportEvery%time.Second != 0)) {
		return c, false, fmt.Errorf("-report-every %s: want 0 (off) or a whole number of seconds", c.ReportEvery)
	}
	if c.Blocks < 0 {
		c.Blocks = 0
		if c.ReportEvery > 0 {
			c.Blocks = defaultBlocks
		}
	}
	if c.Blocks > 0 && c.Duration < time.Duration(c.Blocks)*ackBucket {
		return c, false, fmt.Errorf("-blocks %d: the window of %s is shorter than %d buckets of %s", c.Blocks, c.Duration, c.Blocks, ackBucket)
	}
	if c.RestartKill {
		c.Restart = true
	}
	if c.Restart && c.Addr != "" {
		return c, false, errRestartWithAddr
	}
	if c.discard {
		if c.Restart || c.RulesFile != "" || c.Edges > 0 || c.Addr != "" {
			return c, false, errors.New("the discard server takes no -restart, rules, -edges or -addr")
		}
		return c, false, nil // no markers: nothing to see
	}
	fresh := c.Aggregation && (c.Addr == "" || c.HTTPAddr != "")
	if c.Freshness != nil {
		fresh = *c.Freshness
		if fresh && !c.Aggregation {
			return c, false, errors.New("-freshness needs aggregation: the flow graph and latency API are empty with -aggregation=false")
		}
		if fresh && c.Addr != "" && c.HTTPAddr == "" {
			return c, false, errors.New("-freshness with -addr needs -http-addr")
		}
	}
	return c, fresh, nil
}

// target is the collector under load: started here (proc) or already
// running.
type target struct {
	grpcAddr, httpAddr, dataDir string
	pid                         int
	proc                        *benchproc.Proc // nil: not started here
	started                     time.Time
	discard                     bool     // the discard server, not a collector
	bin                         string   // the collector binary started
	args                        []string // its flags after the listeners' (-restart starts it again with them)
}

// startTarget starts the collector (building it unless -collector names
// one) on a temporary data directory, or takes the running one of -addr,
// or starts the discard server (a subprocess of this binary). cleanup kills
// the subprocess and removes the directory (unless -keep-data).
func startTarget(ctx context.Context, c config, res *Result, logf func(string, ...any)) (*target, func(), error) {
	tg := &target{grpcAddr: c.Addr, httpAddr: c.HTTPAddr, dataDir: c.DataDir, pid: c.PID}
	if c.Addr != "" {
		res.Target = c.Addr
		return tg, func() {}, nil
	}
	if c.discard {
		self, err := os.Executable()
		if err != nil {
			return nil, nil, fmt.Errorf("the discard server is this binary: %w", err)
		}
		res.Target, res.Collector = "subprocess", self+" "+serveDiscardArg
		if tg.proc, err = benchproc.Start(ctx, []string{self, serveDiscardArg, "127.0.0.1:0"}, discardStartedMsg); err != nil {
			return nil, nil, fmt.Errorf("start the discard server: %w", err)
		}
		tg.discard, tg.started = true, time.Now()
		tg.grpcAddr, tg.httpAddr, tg.pid = tg.proc.GRPCAddr(), tg.proc.HTTPAddr(), tg.proc.PID()
		logf("discard server pid %d: otlp_grpc %s, http %s", tg.pid, tg.grpcAddr, tg.httpAddr)
		return tg, func() { tg.proc.Kill() }, nil
	}
	bin := c.Collector
	tmp, err := os.MkdirTemp("", "flowscope-bench-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() {
		if tg.proc != nil {
			tg.proc.Kill()
		}
		if !c.KeepData {
			os.RemoveAll(tmp)
		}
	}
	if c.KeepData {
		res.DataDir = filepath.Join(tmp, "data")
	}
	if bin == "" {
		logf("building the collector")
		if bin, err = benchproc.BuildCollector(ctx, tmp); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	res.Target, res.Collector = "subprocess", bin
	tg.dataDir = filepath.Join(tmp, "data")
	args := []string{"--aggregation=" + strconv.FormatBool(c.Aggregation)}
	if c.RulesFile != "" {
		args = append(args, "--rules", c.RulesFile)
	}
	args = append(args, strings.Fields(c.CollectorArgs)...)
	tg.bin, tg.args = bin, args
	if tg.proc, err = benchproc.StartCollector(ctx, bin, tg.dataDir, args); err != nil {
		cleanup()
		return nil, nil, err
	}
	tg.started = time.Now()
	tg.grpcAddr, tg.httpAddr, tg.pid = tg.proc.GRPCAddr(), tg.proc.HTTPAddr(), tg.proc.PID()
	logf("collector pid %d: otlp_grpc %s, http %s, data %s", tg.pid, tg.grpcAddr, tg.httpAddr, tg.dataDir)
	return tg, cleanup, nil
}

// dial opens n gRPC connections to addr that send pre-encoded requests.
func dial(addr string, n int) ([]*grpc.ClientConn, error) {
	conns := make([]*grpc.ClientConn, 0, n)
	for range n {
		cc, err := grpc.NewClient(addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{proto: encoding.GetCodecV2("proto")})),
			grpc.WithInitialWindowSize(1<<20), grpc.WithInitialConnWindowSize(4<<20))
		if err != nil {
			for _, cc := range conns {
				cc.Close()
			}
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		conns = append(conns, cc)
	}
	return conns, nil
}

// rssSampler samples the collector's RSS (total, anonymous, file pages,
// shared memory) every rssSampleEvery and keeps the maxima, and the
// largest total since the last takeIntervalPeak (-report-every).
type rssSampler struct {
	rss, anon, file, shmem atomic.Int64
	interval               atomic.Int64
	done                   chan struct{}
	wg                     sync.WaitGroup
}

// takeIntervalPeak returns the largest VmRSS sampled since the previous
// call (0: none) and starts a new interval.
func (s *rssSampler) takeIntervalPeak() int64 { return s.interval.Swap(0) }

// startRSSSampler starts sampling process pid (none when pid ≤ 0).
func startRSSSampler(pid int) *rssSampler {
	s := &rssSampler{done: make(chan struct{})}
	if pid <= 0 {
		return s
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(rssSampleEvery)
		defer t.Stop()
		for {
			if st, err := benchproc.ReadProcStatus(pid); err == nil {
				for _, m := range []struct {
					key string
					max *atomic.Int64
				}{{"VmRSS", &s.rss}, {"RssAnon", &s.anon}, {"RssFile", &s.file}, {"RssShmem", &s.shmem}} {
					if st[m.key] > m.max.Load() {
						m.max.Store(st[m.key])
					}
				}
				for v := st["VmRSS"]; ; { // the reporter may reset it meanwhile
					old := s.interval.Load()
					if v <= old || s.interval.CompareAndSwap(old, v) {
						break
					}
				}
			}
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the sampling.
func (s *rssSampler) stop() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.wg.Wait()
}

// sendLoad runs the clients (and the topology sender, freshness markers
// and -report-every rows) through the warm-up and the measured window,
// measures CPU at the window's edges and returns the clients once they
// stopped, with the recorder of their acknowledgements.
func sendLoad(ctx context.Context, c config, tg *target, templates []*template, conns []*grpc.ClientConn, fresh bool,
	rss *rssSampler, res *Result, logf func(string, ...any)) ([]*client, *ackRecorder, error) {
	res.LoadAvgBefore = benchproc.LoadAvg()
	start := time.Now()
	winStart := start.Add(c.Warmup)
	winEnd := winStart.Add(c.Duration)
	ld := &load{templates: templates, winStart: winStart, winEnd: winEnd, maxRequests: c.MaxRequests, timeout: c.Timeout, seqBase: c.Seed,
		acks: newAckRecorder(winStart, winEnd)}
	logf("sending with %d clients over %d connections: %s warm-up, %s measured (aggregation %v, freshness markers %v)",
		c.Clients, c.Conns, c.Warmup, c.Duration, c.Aggregation, fresh)
	var topo *topologySender
	if c.Edges > 0 {
		var err error
		if topo, err = startTopology(ctx, tg.grpcAddr, c.Edges, c.Seed, winEnd); err != nil {
			return nil, nil, err
		}
		res.TopologyEdges = c.Edges
	}
	var fr *freshness
	if fresh {
		fr = newFreshness(tg.grpcAddr, tg.httpAddr, winStart, winEnd, c.Seed)
		if err := fr.start(ctx); err != nil {
			return nil, nil, err
		}
	}
	var rp *reporter
	if c.ReportEvery > 0 {
		logf("reporting every %s of the measured window (spans/s by arrival, collector CPU and RSS, data dir size; here, and in the result)", c.ReportEvery)
		rp = startReporter(ctx, c.ReportEvery, tg.pid, tg.dataDir, rss, ld.acks, winStart, winEnd, os.Stderr)
	}
	var wg sync.WaitGroup
	clients := make([]*client, c.Clients)
	for i := range clients {
		clients[i] = &client{ld: ld, cc: conns[i%len(conns)]}
		wg.Add(1)
		go func(cl *client) { defer wg.Done(); cl.loop(ctx) }(clients[i])
	}

	// CPU at the window's edges.
	sleepUntil(ctx, winStart)
	cpu0 := readCPU(tg.pid)
	sleepUntil(ctx, winEnd)
	cpu1 := readCPU(tg.pid)
	measured := time.Since(winStart)
	if now := time.Now(); now.Before(winEnd) { // interrupted
		measured = now.Sub(winStart)
	}
	res.LoadAvgAfter = benchproc.LoadAvg()
	if rp != nil {
		res.Intervals = rp.wait()
	}
	wg.Wait() // the clients stop at winEnd and let their last call finish
	if topo != nil {
		topo.wait()
		res.TopologyRequests = topo.calls.Load()
		res.TopologyError = topo.err
	}
	if fr != nil {
		logf("waiting for the last markers to become visible")
		res.Freshness = fr.wait() // the last polls end at most 5 s after the window
	}
	logf("load done; collecting results")
	res.WarmupSeconds = c.Warmup.Seconds()
	res.MeasuredSeconds = measured.Seconds()
	res.addCPU(cpu0, cpu1, measured)
	ackSt := ld.acks.stats(winStart.Add(measured))
	res.Acks = &ackSt
	if c.Blocks > 0 {
		res.Blocks = splitBlocks(ld.acks.spansPerBucket(), int(measured/ackBucket), c.Blocks)
	}
	return clients, ld.acks, nil
}

// cpuReading is the CPU time of the collector (srvOK: known), of this
// process and of the whole machine at one moment.
type cpuReading struct {
	srv, cli, mach float64
	srvOK, machOK  bool
}

// readCPU reads the CPU times now; pid ≤ 0: no collector process.
func readCPU(pid int) cpuReading {
	var r cpuReading
	if pid > 0 {
		var err error
		r.srv, err = benchproc.ProcCPUSeconds(pid)
		r.srvOK = err == nil
	}
	r.cli = benchproc.SelfCPUSeconds()
	var err error
	r.mach, err = benchproc.MachineBusySeconds()
	r.machOK = err == nil
	return r
}

// addCPU sets the CPU use over the measured window from its two edges.
func (res *Result) addCPU(a, b cpuReading, measured time.Duration) {
	res.ClientCPUSeconds = b.cli - a.cli
	res.MachineCPUs = runtime.NumCPU()
	srvOK := a.srvOK && b.srvOK
	if a.machOK && b.machOK && measured > 0 {
		other := b.mach - a.mach - res.ClientCPUSeconds
		if srvOK {
			other -= b.srv - a.srv
		}
		other = max(other, 0) / measured.Seconds()
		res.OtherCores = &other
	}
	if measured > 0 {
		res.ClientCores = res.ClientCPUSeconds / measured.Seconds()
	}
	if srvOK {
		s := b.srv - a.srv
		res.ServerCPUSeconds = &s
		if measured > 0 {
			cores := s / measured.Seconds()
			res.ServerCores = &cores
		}
	}
}

// addClients sums the clients' counters and takes the export latencies
// from rec.
func (res *Result) addClients(clients []*client, rec *ackRecorder) {
	for _, cl := range clients {
		res.AckedSpans += cl.ackedWin
		res.AckedSpansTotal += cl.acked
		res.RequestsOK += cl.ok
		res.RequestsRefused += cl.refused
		res.RequestsFailed += cl.failed
		res.SpansRejected += cl.rejected
		if res.FirstError == "" {
			res.FirstError = cl.firstErr
		}
	}
	if res.MeasuredSeconds > 0 {
		res.SpansPerSecond = float64(res.AckedSpans) / res.MeasuredSeconds
	}
	if res.ServerCPUSeconds != nil && res.AckedSpans > 0 {
		us := *res.ServerCPUSeconds * 1e6 / float64(res.AckedSpans)
		res.ServerCPUMicrosPerSpan = &us
	}
	res.LatencyP50Ms, res.LatencyP99Ms, res.LatencyMaxMs = rec.latency()
}

// readBack reads acknowledged traces back by ID (each client's first and
// last), reads the store's own count and the rollup sizes from its
// self-metrics, and the alert rules' state.
func readBack(c config, tg *target, clients []*client, res *Result, logf func(string, ...any)) {
	found, checked := true, 0
	for _, cl := range clients {
		for _, id := range []string{cl.firstTrace, cl.lastTrace} {
			if id == "" {
				continue
			}
			checked++
			ok, err := traceFound(tg.httpAddr, id)
			if err != nil {
				logf("read back %s: %v", id, err)
			}
			found = found && ok
		}
	}
	if checked > 0 {
		res.ReadBack = &found
	}
	if samples, err := scrapeMetrics(tg.httpAddr); err != nil {
		logf("self-metrics: %v", err)
	} else {
		if n, err := acceptedSpans(samples); err == nil {
			res.ServerAcceptedSpans = &n
		} else {
			logf("self-metrics: %v", err)
		}
		res.Rollup = rollupSizes(samples)
	}
	if c.RulesFile != "" {
		res.Rules = &RulesResult{File: c.RulesFile, UptimeSeconds: time.Since(tg.started).Seconds()}
		if err := res.Rules.read(tg.httpAddr); err != nil {
			logf("alert rules: %v", err)
			res.Rules.FirstError = err.Error()
		}
	}
}

// addMemory sets the collector's memory: the kernel's peak and current
// RSS split, and the sampled maxima.
func (res *Result) addMemory(pid int, rss *rssSampler) {
	if pid <= 0 {
		return
	}
	if st, err := benchproc.ReadProcStatus(pid); err == nil {
		hwm, anon, file := st["VmHWM"], st["RssAnon"], st["RssFile"]
		res.PeakRSSBytes, res.RSSAnonBytes, res.RSSFileBytes = &hwm, &anon, &file
	}
	m, a, f, sh := rss.rss.Load(), rss.anon.Load(), rss.file.Load(), rss.shmem.Load()
	res.MaxSampledRSSBytes, res.MaxSampledAnon, res.MaxSampledFile, res.MaxSampledShmem = &m, &a, &f, &sh
}

// stopCollector stops a collector started here, recording the shutdown
// time, exit code and error log lines; its error says what went wrong.
func (tg *target) stopCollector(res *Result) error {
	if tg.proc == nil {
		return nil
	}
	t0 := time.Now()
	code, logs, err := tg.proc.Stop(2 * time.Minute)
	d := time.Since(t0).Seconds()
	res.ShutdownSeconds, res.ExitCode, res.ErrorLogs = &d, &code, &logs
	switch {
	case err != nil:
		return err
	case code != 0:
		return fmt.Errorf("collector exited with status %d; last log lines:\n%s", code, tg.proc.Tail())
	case logs > 0:
		return fmt.Errorf("collector logged %d errors; last log lines:\n%s", logs, tg.proc.Tail())
	}
	return nil
}

// addDisk sets the sizes of the store file and of the data directory (file
// sizes, and allocated blocks).
func (res *Result) addDisk(dataDir string) {
	if dataDir == "" {
		return
	}
	if fi, err := os.Stat(filepath.Join(dataDir, "flowscope.db")); err == nil {
		n := fi.Size()
		res.DBFileBytes = &n
		if res.AckedSpansTotal > 0 {
			b := float64(n) / float64(res.AckedSpansTotal)
			res.BytesPerSpan = &b
		}
	}
	if total, alloc, err := dirSize(dataDir); err == nil {
		res.DataDirBytes, res.DataDirAllocBytes = &total, &alloc
	}
}

// verdict is the run's error: runErr, else the first check that failed
// (interrupted, failed exports, alert rules, traces not read back, spans
// acknowledged but not counted by a collector started here, markers not
// visible).
func verdict(ctx context.Context, res *Result, started bool, runErr error) error {
	if runErr == nil && ctx.Err() != nil {
		runErr = errors.New("interrupted")
	}
	if runErr == nil && res.RequestsFailed > 0 {
		runErr = fmt.Errorf("%d export calls failed; first: %s", res.RequestsFailed, res.FirstError)
	}
	if r := res.Rules; runErr == nil && r != nil && (r.Loaded == 0 || r.Errors > 0 || r.Cycles == 0) {
		runErr = fmt.Errorf("alert rules: %d loaded, %d in error, %d evaluation cycles (first error: %s)", r.Loaded, r.Errors, r.Cycles, orNone(r.FirstError))
	}
	if runErr == nil && res.ReadBack != nil && !*res.ReadBack {
		runErr = errors.New("an acknowledged trace was not found by ID")
	}
	if runErr == nil && started && res.ServerAcceptedSpans != nil && *res.ServerAcceptedSpans < res.AckedSpansTotal {
		runErr = fmt.Errorf("the store counts %d accepted spans but %d were acknowledged", *res.ServerAcceptedSpans, res.AckedSpansTotal)
	}
	if f := res.Freshness; runErr == nil && f != nil {
		switch {
		case f.FlowGraph.Invisible > 0 || f.Latency.Invisible > 0:
			runErr = fmt.Errorf("acknowledged markers not visible within %s: %d of %d in the flow graph (first error: %s), %d in the latency API (first error: %s)",
				markerVisibleMax, f.FlowGraph.Invisible, f.Acked, orNone(f.FlowGraph.FirstErr), f.Latency.Invisible, orNone(f.Latency.FirstErr))
		case f.VirtualFlowGraph.Invisible > 0 || f.VirtualLatency.Invisible > 0:
			runErr = fmt.Errorf("acknowledged virtual markers not visible within %s: %d of %d in the flow graph (first error: %s), %d in the latency API (first error: %s)",
				markerVisibleMax, f.VirtualFlowGraph.Invisible, f.VirtualAcked, orNone(f.VirtualFlowGraph.FirstErr),
				f.VirtualLatency.Invisible, orNone(f.VirtualLatency.FirstErr))
		case f.Acked == 0 && f.Markers > 0:
			runErr = fmt.Errorf("none of the %d markers was acknowledged; first error: %s", f.Markers, orNone(f.ExportErr))
		case f.VirtualAcked == 0 && f.VirtualMarkers > 0:
			runErr = fmt.Errorf("none of the %d virtual markers was acknowledged; first error: %s", f.VirtualMarkers, orNone(f.ExportErr))
		}
	}
	return runErr
}

// rssSampleEvery is the period of the RSS sampling.
const rssSampleEvery = 100 * time.Millisecond

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func sleepUntil(ctx context.Context, t time.Time) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(t)):
	}
}
