package main

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/flowscope/flowscope/bench/internal/benchproc"
)

// Bounds of the drain: how long the nodes may take to store what was
// acknowledged, how long the total must stand still to count as final,
// and how often it is read.
const (
	drainLimit  = 2 * time.Minute
	settleFor   = 3 * time.Second
	pollEvery   = 250 * time.Millisecond
	genSpread   = 150 * time.Second // the pool's traces start over this
	genAge      = 3 * time.Minute   // … beginning this long ago
	progressLog = 10 * time.Second
)

// cpuSample is the CPU time of every process of a run at one moment.
type cpuSample struct {
	at        time.Time
	nodes     []float64
	col, self float64
	mach      float64
	errs      []string
}

// sample reads the CPU seconds of the nodes, the Collector, this process
// and the machine.
func (cl *cluster) sample() cpuSample {
	s := cpuSample{at: time.Now(), self: benchproc.SelfCPUSeconds()}
	var err error
	for _, n := range cl.nodes {
		v, err := benchproc.ProcCPUSeconds(n.p.PID())
		if err != nil {
			s.errs = append(s.errs, fmt.Sprintf("%s CPU: %v", n.name, err))
		}
		s.nodes = append(s.nodes, v)
	}
	if s.col, err = benchproc.ProcCPUSeconds(cl.col.pid()); err != nil {
		s.errs = append(s.errs, fmt.Sprintf("Collector CPU: %v", err))
	}
	if s.mach, err = benchproc.MachineBusySeconds(); err != nil {
		s.errs = append(s.errs, fmt.Sprintf("machine CPU: %v", err))
	}
	return s
}

// runCluster measures one cluster size: n nodes behind the Collector. The
// result is filled in as far as the run got; the processes are stopped
// and their ends recorded before it returns.
func runCluster(ctx context.Context, c config, n int, seedBase uint64, dir string, logf func(string, ...any)) (rr *RunResult, err error) {
	rr = &RunResult{Nodes: n}
	cl := &cluster{}
	defer func() {
		cl.stop(rr, ctx.Err() != nil)
		for _, nr := range rr.PerNode {
			if nr.Problem != "" {
				rr.Problems = append(rr.Problems, nr.Name+": "+nr.Problem)
			}
		}
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
	}()

	logf("%d nodes: starting them", n)
	var addrs []string
	for i := range n {
		nd, err := startNode(ctx, c.Collector, dir, i)
		if err != nil {
			return rr, err
		}
		cl.nodes = append(cl.nodes, nd)
		rr.PerNode = append(rr.PerNode, NodeResult{Name: nd.name, PID: nd.p.PID(), OTLPGRPC: nd.p.GRPCAddr(), HTTP: nd.p.HTTPAddr()})
		addrs = append(addrs, nd.p.GRPCAddr())
		logf("%s pid %d: otlp_grpc %s, http %s", nd.name, nd.p.PID(), nd.p.GRPCAddr(), nd.p.HTTPAddr())
	}
	if cl.col, err = startOtelcol(ctx, c.Otelcol, dir, addrs, c.Consumers, c.QueueSize); err != nil {
		return rr, err
	}
	rr.CollectorAddr = cl.col.addr
	logf("Collector pid %d: otlp_grpc %s → %s", cl.col.pid(), cl.col.addr, strings.Join(addrs, ", "))

	genStart := time.Now().Add(-genAge)
	pool, poolSpans, err := buildPool(c.Pool, c.PerRequest, seedBase, genStart, genSpread)
	if err != nil {
		return rr, err
	}
	rr.PoolSpans = poolSpans
	logf("%d nodes: %d requests of %d traces pre-encoded, %d spans", n, len(pool), c.PerRequest, poolSpans)
	var conns []*grpc.ClientConn
	defer func() {
		for _, cc := range conns {
			cc.Close()
		}
	}()
	for range c.Conns {
		cc, err := dialReady(ctx, cl.col.addr)
		if err != nil {
			return rr, err
		}
		conns = append(conns, cc)
	}
	runtime.GC() // the pool's garbage, not the load's

	// The load.
	rr.LoadAvgBefore = benchproc.LoadAvg()
	st := &loadStats{}
	var seq atomic.Uint64
	s0 := cl.sample()
	until := s0.at.Add(c.Duration)
	var wg sync.WaitGroup
	for _, cc := range conns {
		wg.Go(func() { send(ctx, cc, pool, &seq, until, st) })
	}
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(progressLog)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				logf("%d nodes: %d spans acknowledged, %d calls refused", n, st.acked.Load(), st.refused.Load())
			}
		}
	}()
	wg.Wait()
	close(stopProgress)
	s1 := cl.sample()
	rr.Requests, rr.Acked, rr.Refused, rr.Failed, rr.RejectedSpans = st.requests.Load(), st.acked.Load(), st.refused.Load(), st.failed.Load(), st.rejected.Load()
	rr.FirstError, rr.FirstRefusal = st.firstErr, st.firstRefusal
	rr.LoadSeconds = s1.at.Sub(s0.at).Seconds()
	rr.AckedPerSec = float64(rr.Acked) / rr.LoadSeconds
	if ctx.Err() != nil {
		return rr, ctx.Err()
	}
	logf("%d nodes: load over, %d spans acknowledged (%.0f/s); waiting for the nodes to store them", n, rr.Acked, rr.AckedPerSec)

	// The drain: until the nodes hold every acknowledged span (when no call
	// was refused, so none can have been stored without an acknowledgement),
	// or their total has stood still for settleFor, or drainLimit.
	sEnd, counts, drainErr := cl.drain(ctx, genStart.Add(-10*time.Minute), time.Now().Add(10*time.Minute), rr.Acked,
		rr.Refused == 0 && rr.Failed == 0 && rr.RejectedSpans == 0)
	if drainErr != nil {
		rr.Problems = append(rr.Problems, drainErr.Error())
	}
	rr.LoadAvgAfter = benchproc.LoadAvg()
	for _, s := range []cpuSample{s0, s1, sEnd} {
		rr.Problems = append(rr.Problems, s.errs...)
	}
	rr.DrainSeconds = sEnd.at.Sub(s1.at).Seconds()
	rr.fill(s0, s1, sEnd, counts, float64(runtime.NumCPU()))
	if rr.Short > 0 {
		rr.Problems = append(rr.Problems, fmt.Sprintf("%d acknowledged spans were not stored within %s of the end of the load", rr.Short, drainLimit))
	}
	logf("%d nodes: %d spans stored, drain %.1f s", n, rr.Stored, rr.DrainSeconds)
	return rr, ctx.Err()
}

// drain polls every node's span total until it reaches want (if exact),
// stands still for settleFor, or drainLimit passes. It returns the CPU
// sample and the per-node counts of the poll that first saw the final
// total.
func (cl *cluster) drain(ctx context.Context, start, end time.Time, want int64, exact bool) (cpuSample, []int64, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	t0 := time.Now()
	deadline := t0.Add(drainLimit)
	var (
		best      = cl.sample()
		bestSum   = int64(-1)
		bestCount = make([]int64, len(cl.nodes))
		lastErr   error
	)
	for {
		counts := make([]int64, len(cl.nodes))
		var sum int64
		var err error
		for i, n := range cl.nodes {
			if counts[i], err = storedSpans(ctx, hc, n.p.HTTPAddr(), start, end); err != nil {
				err = fmt.Errorf("%s: %w", n.name, err)
				break
			}
			sum += counts[i]
		}
		now := cl.sample()
		if err != nil {
			lastErr = err
		} else if sum > bestSum {
			best, bestSum, bestCount = now, sum, counts
		}
		switch {
		case ctx.Err() != nil:
			return best, bestCount, ctx.Err()
		case err == nil && exact && sum >= want:
			return best, bestCount, nil
		case bestSum >= 0 && now.at.Sub(best.at) >= settleFor:
			return best, bestCount, nil
		case now.at.After(deadline):
			if bestSum < 0 {
				return best, bestCount, fmt.Errorf("no node total could be read: %v", lastErr)
			}
			return best, bestCount, fmt.Errorf("the nodes' total still grew after %s", drainLimit)
		}
		select {
		case <-ctx.Done():
		case <-time.After(pollEvery):
		}
	}
}
