package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildCollector builds ./cmd/collector of the module that contains the
// working directory into dir.
func buildCollector(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w (use -collector PATH)", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the flowscope module: run from the repository or pass -collector PATH")
	}
	bin := filepath.Join(dir, "collector")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/collector")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/collector: %v\n%s", err, out)
	}
	return bin, nil
}

// collectorProc is a collector running as a subprocess.
type collectorProc struct {
	cmd                *exec.Cmd
	grpcAddr, httpAddr string
	logDone            chan struct{}

	mu        sync.Mutex
	lines     []string // the last log lines
	errorLogs int
	exited    bool
}

// startCollector starts `bin serve` on dataDir with every listener on a
// free loopback port and waits for its "collector started" log line.
func startCollector(ctx context.Context, bin, dataDir string, extra []string) (*collectorProc, error) {
	args := append([]string{"serve", "--data-dir", dataDir,
		"--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--zipkin-addr", "127.0.0.1:0", "--log-format", "json"}, extra...)
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() { // a reproducible configuration (a CPU profile may be asked for)
		if !strings.HasPrefix(kv, "FLOWSCOPE_") || strings.HasPrefix(kv, "FLOWSCOPE_CPUPROFILE=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &collectorProc{cmd: cmd, logDone: make(chan struct{})}
	started := make(chan [2]string, 1)
	go func() {
		defer close(p.logDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var rec map[string]any
			_ = json.Unmarshal([]byte(line), &rec)
			p.mu.Lock()
			p.lines = append(p.lines, line)
			if len(p.lines) > 40 {
				p.lines = p.lines[1:]
			}
			if rec["level"] == "ERROR" {
				p.errorLogs++
			}
			p.mu.Unlock()
			if rec["msg"] == "collector started" {
				g, _ := rec["otlp_grpc"].(string)
				h, _ := rec["http"].(string)
				select {
				case started <- [2]string{g, h}:
				default:
				}
			}
		}
	}()
	select {
	case a := <-started:
		p.grpcAddr, p.httpAddr = a[0], a[1]
		if p.grpcAddr == "" || p.httpAddr == "" {
			p.kill()
			return nil, fmt.Errorf("collector started without addresses:\n%s", p.tail())
		}
		return p, nil
	case <-p.logDone:
		cmd.Wait()
		return nil, fmt.Errorf("collector exited before starting (%v):\n%s", cmd.ProcessState, p.tail())
	case <-time.After(60 * time.Second):
		p.kill()
		return nil, fmt.Errorf("collector did not start within 60s:\n%s", p.tail())
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
}

func (p *collectorProc) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// stop sends SIGTERM and waits up to timeout for the exit; it returns the
// exit code and the number of error log lines.
func (p *collectorProc) stop(timeout time.Duration) (int, int, error) {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return -1, 0, err
	}
	done := make(chan error, 1)
	go func() { <-p.logDone; done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(timeout):
		p.kill()
		return -1, 0, fmt.Errorf("collector did not exit within %s of SIGTERM", timeout)
	}
	p.mu.Lock()
	p.exited = true
	n := p.errorLogs
	p.mu.Unlock()
	return p.cmd.ProcessState.ExitCode(), n, nil
}

// kill ends the subprocess if it is still running.
func (p *collectorProc) kill() {
	p.mu.Lock()
	exited := p.exited
	p.exited = true
	p.mu.Unlock()
	if !exited {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

// readProcStatus returns the kB fields of /proc/PID/status in bytes.
func readProcStatus(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	m := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 2 && f[1] == "kB" {
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				m[k] = n << 10
			}
		}
	}
	if _, ok := m["VmRSS"]; !ok {
		return nil, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return m, nil
}

// loadAvg returns the 1, 5 and 15 minute load averages of the machine.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; it is 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// procCPUSeconds returns the user+system CPU time of process pid.
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it are plain.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 { // f[0] is field 3 (state); utime is field 14, stime 15
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad /proc stat times")
	}
	return float64(ut+st) / clockTicks, nil
}

// machineBusySeconds returns the CPU time all CPUs spent busy (user, nice,
// system, irq, softirq, steal; not idle or iowait) from /proc/stat.
func machineBusySeconds() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("bad /proc/stat")
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system [idle iowait] irq softirq steal
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, errors.New("bad /proc/stat")
		}
		busy += n
	}
	return float64(busy) / clockTicks, nil
}

// selfCPUSeconds returns this process's user+system CPU time.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
