// Package benchproc holds what the benchmark programs under bench/ share
// to run the collector as a subprocess and to account for CPU and memory:
// building ./cmd/collector, starting it (or any program that logs a JSON
// "started" line with its addresses) and stopping it, and reading the
// CPU time and memory of processes and of the machine from /proc.
//
// It is Linux only, as the benchmarks are.
package benchproc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BuildCollector builds ./cmd/collector of the module that contains the
// working directory into dir and returns the binary's path.
func BuildCollector(ctx context.Context, dir string) (string, error) {
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

// StartedMsg is the log message of `collector serve` once it listens.
const StartedMsg = "collector started"

// tailLines is how many of the last log lines a Proc keeps.
const tailLines = 40

// Proc is a collector (or another program with the same JSON log) running
// as a subprocess, its stderr log read line by line.
type Proc struct {
	cmd                *exec.Cmd
	grpcAddr, httpAddr string
	logDone            chan struct{} // closed when stderr reaches EOF

	mu        sync.Mutex
	lines     []string // the last log lines
	errorLogs int
	exited    bool
}

// StartCollector starts `bin serve` on dataDir, with every listener on a
// free port of 127.0.0.1, the JSON log and then the extra arguments, and
// waits for its "collector started" log line.
func StartCollector(ctx context.Context, bin, dataDir string, extra []string) (*Proc, error) {
	argv := append([]string{bin, "serve", "--data-dir", dataDir,
		"--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--zipkin-addr", "127.0.0.1:0", "--log-format", "json"}, extra...)
	return Start(ctx, argv, StartedMsg)
}

// Start runs argv (a binary and its arguments: `collector serve ...`,
// another subcommand, or a command prefix such as `ip netns exec NS`
// before the collector), which must log JSON lines to stderr, and waits
// up to a minute for the line whose msg is startedMsg; its otlp_grpc (or
// grpc) and http attributes are the addresses. The environment is this
// process's without FLOWSCOPE_* variables (the configuration comes from
// argv only) but for FLOWSCOPE_CPUPROFILE. If ctx ends first, or the
// program exits or does not start in time, it is killed and an error
// holding the last log lines is returned.
func Start(ctx context.Context, argv []string, startedMsg string) (*Proc, error) {
	if len(argv) == 0 {
		return nil, errors.New("benchproc: empty command")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
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
	p := &Proc{cmd: cmd, logDone: make(chan struct{})}
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
			if len(p.lines) > tailLines {
				p.lines = p.lines[1:]
			}
			if rec["level"] == "ERROR" {
				p.errorLogs++
			}
			p.mu.Unlock()
			if rec["msg"] == startedMsg {
				g, _ := rec["otlp_grpc"].(string)
				if g == "" {
					g, _ = rec["grpc"].(string)
				}
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
			p.Kill()
			return nil, fmt.Errorf("collector started without addresses:\n%s", p.Tail())
		}
		return p, nil
	case <-p.logDone:
		cmd.Wait()
		return nil, fmt.Errorf("collector exited before starting (%v):\n%s", cmd.ProcessState, p.Tail())
	case <-time.After(60 * time.Second):
		p.Kill()
		return nil, fmt.Errorf("collector did not start within 60s:\n%s", p.Tail())
	case <-ctx.Done():
		p.Kill()
		return nil, ctx.Err()
	}
}

// GRPCAddr is the OTLP/gRPC (or gRPC) address of the started line.
func (p *Proc) GRPCAddr() string { return p.grpcAddr }

// HTTPAddr is the HTTP (REST API, UI, metrics) address of the started line.
func (p *Proc) HTTPAddr() string { return p.httpAddr }

// PID is the subprocess's process ID.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Tail returns the last log lines (at most 40), one a line.
func (p *Proc) Tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// ErrorLogs is the number of log lines at level ERROR so far.
func (p *Proc) ErrorLogs() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errorLogs
}

// Stop sends SIGTERM and waits up to timeout for the exit (and the end
// of its log); it returns the exit code and the number of error log
// lines. After the timeout it kills the process and returns an error.
func (p *Proc) Stop(timeout time.Duration) (int, int, error) {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return -1, 0, err
	}
	done := make(chan error, 1)
	go func() { <-p.logDone; done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(timeout):
		p.Kill()
		return -1, 0, fmt.Errorf("collector did not exit within %s of SIGTERM", timeout)
	}
	p.mu.Lock()
	p.exited = true
	n := p.errorLogs
	p.mu.Unlock()
	return p.cmd.ProcessState.ExitCode(), n, nil
}

// Kill ends the subprocess with SIGKILL if it is still running and waits
// for it; after Stop or Kill it does nothing.
func (p *Proc) Kill() {
	p.mu.Lock()
	exited := p.exited
	p.exited = true
	p.mu.Unlock()
	if !exited {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}
