package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowscope/flowscope/bench/internal/benchproc"
	"github.com/flowscope/flowscope/internal/otelcoltest"
)

// nodeHost is the loopback address of node i (from 0): 127.0.0.2, ….
func nodeHost(i int) string { return fmt.Sprintf("127.0.0.%d", 2+i) }

// node is one Flowscope node of the cluster.
type node struct {
	name string
	p    *benchproc.Proc
}

// startNode starts node i: `collector serve` on its own loopback address
// (every listener on a free port) and data directory under dir.
func startNode(ctx context.Context, bin, dir string, i int) (*node, error) {
	host := nodeHost(i)
	name := fmt.Sprintf("node-%d", i+1)
	argv := []string{bin, "serve", "--data-dir", filepath.Join(dir, name),
		"--otlp-grpc-addr", host + ":0", "--otlp-http-addr", host + ":0",
		"--http-addr", host + ":0", "--zipkin-addr", host + ":0",
		"--edge-wait", "1s", "--node-name", name, "--log-format", "json"}
	p, err := benchproc.Start(ctx, argv, benchproc.StartedMsg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &node{name: name, p: p}, nil
}

// otelcol is the OpenTelemetry Collector running as a subprocess, its log
// in a file.
type otelcol struct {
	cmd     *exec.Cmd
	addr    string // OTLP/gRPC
	logPath string
	done    chan struct{} // closed when it has exited
	waitErr error
}

// startOtelcol writes the configuration into dir and runs the Collector
// in front of the nodes' OTLP/gRPC addresses until it listens.
func startOtelcol(ctx context.Context, bin, dir string, nodes []string, consumers, queueSize int) (*otelcol, error) {
	addr, err := freeAddr("127.0.0.1")
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "otelcol.yaml")
	if err := os.WriteFile(cfg, []byte(otelcoltest.Config(addr, nodes, consumers, queueSize)), 0o644); err != nil {
		return nil, err
	}
	o := &otelcol{addr: addr, logPath: filepath.Join(dir, "otelcol.log"), done: make(chan struct{})}
	logf, err := os.Create(o.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	o.cmd = exec.Command(bin, "--config", cfg)
	o.cmd.Stdout, o.cmd.Stderr = logf, logf
	if err := o.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the Collector: %w", err)
	}
	go func() { o.waitErr = o.cmd.Wait(); close(o.done) }()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return o, nil
		}
		select {
		case <-o.done:
			return nil, fmt.Errorf("the Collector exited (%v):\n%s", o.waitErr, o.tail(20))
		case <-ctx.Done():
			o.kill()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			o.kill()
			return nil, fmt.Errorf("the Collector does not listen on %s after 30 s:\n%s", addr, o.tail(20))
		}
	}
}

// pid is the Collector's process ID.
func (o *otelcol) pid() int { return o.cmd.Process.Pid }

// kill ends the Collector (SIGKILL: its queues are in memory and the run
// is over) and waits for it.
func (o *otelcol) kill() {
	o.cmd.Process.Kill()
	<-o.done
}

// logLines returns the Collector's log lines.
func (o *otelcol) logLines() []string {
	b, err := os.ReadFile(o.logPath)
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// errorLines returns the log lines at level error.
func (o *otelcol) errorLines() []string {
	var out []string
	for _, l := range o.logLines() {
		var rec struct {
			Level string `json:"level"`
		}
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Level == "error" {
			out = append(out, l)
		}
	}
	return out
}

// tail returns the last n log lines.
func (o *otelcol) tail(n int) string {
	ls := o.logLines()
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// freeAddr returns host:port with a port that is free now.
func freeAddr(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// cluster is the nodes and the Collector of one run.
type cluster struct {
	nodes []*node
	col   *otelcol
}

// stop kills the Collector, then stops every node with SIGTERM (at once,
// each waited for up to a minute), and records how they ended in rr.
// interrupted says the run was interrupted: the nodes may have had the
// terminal's SIGINT already, so how they ended is not recorded.
func (cl *cluster) stop(rr *RunResult, interrupted bool) {
	if cl.col != nil {
		errs := cl.col.errorLines()
		cl.col.kill()
		if rr != nil {
			rr.CollectorErrorLogs = len(errs)
			if len(errs) > 0 {
				rr.CollectorFirstError = errs[0]
			}
		}
	}
	var wg sync.WaitGroup
	for i, n := range cl.nodes {
		wg.Go(func() {
			code, logs, err := n.p.Stop(time.Minute)
			if rr == nil || i >= len(rr.PerNode) || interrupted {
				return
			}
			nr := &rr.PerNode[i]
			nr.ExitCode, nr.ErrorLogs = code, logs
			switch {
			case err != nil:
				nr.Problem = err.Error()
			case err == nil && (code != 0 || logs > 0):
				nr.Problem = fmt.Sprintf("exited %d with %d error log lines; last lines:\n%s", code, logs, n.p.Tail())
			}
		})
	}
	wg.Wait()
}

// storedSpans is the sum of the span counts of GET /api/v1/services over
// [start, end] on the node at httpAddr.
func storedSpans(ctx context.Context, hc *http.Client, httpAddr string, start, end time.Time) (int64, error) {
	q := url.Values{"start": {strconv.FormatInt(start.UnixMilli(), 10)}, "end": {strconv.FormatInt(end.UnixMilli(), 10)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/api/v1/services?"+q.Encode(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /api/v1/services: status %d: %.200s", resp.StatusCode, body)
	}
	return sumSpanCounts(body)
}

// sumSpanCounts adds up the spanCount of every service of a
// /api/v1/services answer; protojson writes the int64 as a string, a
// number is taken too.
func sumSpanCounts(body []byte) (int64, error) {
	var doc struct {
		Services []struct {
			SpanCount json.RawMessage `json:"spanCount"`
		} `json:"services"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return 0, fmt.Errorf("services: %w", err)
	}
	var sum int64
	for _, s := range doc.Services {
		if len(s.SpanCount) == 0 {
			continue
		}
		n, err := strconv.ParseInt(string(bytes.Trim(s.SpanCount, `"`)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("services: spanCount %s", s.SpanCount)
		}
		sum += n
	}
	return sum, nil
}
