package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
	res := &Result{Clients: c.Clients, Conns: c.Conns, SpansPerRequest: c.SpansPerRequest, Aggregation: c.Aggregation}
	tg, cleanup, err := startTarget(ctx, c, res, logf)
	if err != nil {
		return nil, err
	}
	defer cleanup()

	logf("encoding %d requests of %d spans", c.Pool, c.SpansPerRequest)
	templates, err := buildTemplates(c.Pool, c.SpansPerRequest, c.Seed)
	if err != nil {
		return nil, err
	}
	res.SpansPerRequest = templates[0].spans
	res.RequestBytes = len(templates[0].raw)
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
	clients, err := sendLoad(ctx, c, tg, templates, conns, fresh, res, logf)
	if err != nil {
		rss.stop()
		return nil, err
	}
	res.addClients(clients)
	if tg.httpAddr != "" {
		readBack(c, tg, clients, res, logf)
	}
	rss.stop()
	res.addMemory(tg.pid, rss)
	runErr := tg.stopCollector(res)
	res.addDisk(tg.dataDir)
	return res, verdict(ctx, res, tg.proc != nil, runErr)
}

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
}

// startTarget starts the collector (building it unless -collector names
// one) on a temporary data directory, or takes the running one of -addr.
// cleanup kills the subprocess and removes the directory (unless
// -keep-data).
func startTarget(ctx context.Context, c config, res *Result, logf func(string, ...any)) (*target, func(), error) {
	tg := &target{grpcAddr: c.Addr, httpAddr: c.HTTPAddr, dataDir: c.DataDir, pid: c.PID}
	if c.Addr != "" {
		res.Target = c.Addr
		return tg, func() {}, nil
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

// rssSampler samples the collector's RSS (total, anonymous, file pages)
// every rssSampleEvery and keeps the maxima.
type rssSampler struct {
	rss, anon, file atomic.Int64
	done            chan struct{}
	wg              sync.WaitGroup
}

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
				}{{"VmRSS", &s.rss}, {"RssAnon", &s.anon}, {"RssFile", &s.file}} {
					if st[m.key] > m.max.Load() {
						m.max.Store(st[m.key])
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

// sendLoad runs the clients (and the topology sender and freshness
// markers) through the warm-up and the measured window, measures CPU at
// the window's edges and returns the clients once they stopped.
func sendLoad(ctx context.Context, c config, tg *target, templates []*template, conns []*grpc.ClientConn, fresh bool,
	res *Result, logf func(string, ...any)) ([]*client, error) {
	res.LoadAvgBefore = benchproc.LoadAvg()
	start := time.Now()
	winStart := start.Add(c.Warmup)
	winEnd := winStart.Add(c.Duration)
	ld := &load{templates: templates, winStart: winStart, winEnd: winEnd, maxRequests: c.MaxRequests, timeout: c.Timeout, seqBase: c.Seed}
	logf("sending with %d clients over %d connections: %s warm-up, %s measured (aggregation %v, freshness markers %v)",
		c.Clients, c.Conns, c.Warmup, c.Duration, c.Aggregation, fresh)
	var topo *topologySender
	if c.Edges > 0 {
		var err error
		if topo, err = startTopology(ctx, tg.grpcAddr, c.Edges, c.Seed, winEnd); err != nil {
			return nil, err
		}
		res.TopologyEdges = c.Edges
	}
	var fr *freshness
	if fresh {
		fr = newFreshness(tg.grpcAddr, tg.httpAddr, winStart, winEnd, c.Seed)
		if err := fr.start(ctx); err != nil {
			return nil, err
		}
	}
	var wg sync.WaitGroup
	clients := make([]*client, c.Clients)
	for i := range clients {
		clients[i] = &client{ld: ld, cc: conns[i%len(conns)], lat: make([]time.Duration, 0, 4096)}
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
	acks := []time.Time{}
	for _, cl := range clients {
		acks = append(acks, cl.acks...)
	}
	ackSt := ackStats(acks, winStart, winStart.Add(measured))
	res.Acks = &ackSt
	return clients, nil
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

// addClients sums the clients' counters and export latencies.
func (res *Result) addClients(clients []*client) {
	var lat []time.Duration
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
		lat = append(lat, cl.lat...)
	}
	if res.MeasuredSeconds > 0 {
		res.SpansPerSecond = float64(res.AckedSpans) / res.MeasuredSeconds
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		q := func(p float64) float64 { return ms(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
		res.LatencyP50Ms, res.LatencyP99Ms, res.LatencyMaxMs = q(0.50), q(0.99), ms(lat[len(lat)-1])
	}
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
	m, a, f := rss.rss.Load(), rss.anon.Load(), rss.file.Load()
	res.MaxSampledRSSBytes, res.MaxSampledAnon, res.MaxSampledFile = &m, &a, &f
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

// addDisk sets the sizes of the store file and of the data directory.
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
	var total int64
	filepath.WalkDir(dataDir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	res.DataDirBytes = &total
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
