package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// procGoTool returns the go command that runs this test.
func procGoTool(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the go tool is needed to build the collector: not on PATH nor at %s", p)
	}
	return p
}

// procBuildCollector builds the collector binary into a temporary directory.
func procBuildCollector(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "collector")
	if err := goBuildCollector(procGoTool(t), bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// goBuildCollector builds the collector binary to path bin.
func goBuildCollector(goTool, bin string) error {
	cmd := exec.Command(goTool, "build", "-o", bin, "github.com/flowscope/flowscope/cmd/collector")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/collector: %v\n%s", err, out)
	}
	return nil
}

// procCollector is a collector binary running as a subprocess, its JSON log
// (stderr) captured.
type procCollector struct {
	cmd          *exec.Cmd
	grpcAddr     string
	httpAddr     string
	otlpHTTPAddr string
	logDone      chan struct{} // closed when stderr reaches EOF
	startedMsg   string        // the log message that says it has started

	mu     sync.Mutex
	logs   []string
	errors []string // log lines at level ERROR
	waited bool
	state  *os.ProcessState
}

// procStartCollector starts `bin serve` on dir (with extraArgs) with every
// listener on a free loopback port and waits for its "collector started" log line. The process
// is killed at the end of the test if it still runs.
func procStartCollector(t testing.TB, bin, dir string, extraArgs ...string) *procCollector {
	t.Helper()
	args := append([]string{"serve", "--data-dir", dir,
		"--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--zipkin-addr", "127.0.0.1:0",
		"--log-format", "json"}, extraArgs...)
	return procStart(t, append([]string{bin}, args...), "collector started")
}

// procStart runs argv (a collector, possibly behind a prefix such as ip
// netns exec) and waits for its log line startedMsg ("collector started",
// "query front end started"), whose otlp_grpc (or grpc), http and
// otlp_http attributes it records.
func procStart(t testing.TB, argv []string, startedMsg string) *procCollector {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FLOWSCOPE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", argv[0], err)
	}
	p := &procCollector{cmd: cmd, logDone: make(chan struct{}), startedMsg: startedMsg}
	t.Cleanup(p.kill)
	started := make(chan map[string]any, 1)
	go p.readLog(stderr, started)
	select {
	case rec := <-started:
		p.grpcAddr, _ = rec["otlp_grpc"].(string)
		if p.grpcAddr == "" {
			p.grpcAddr, _ = rec["grpc"].(string)
		}
		p.httpAddr, _ = rec["http"].(string)
		p.otlpHTTPAddr, _ = rec["otlp_http"].(string)
		if p.grpcAddr == "" || p.httpAddr == "" || (p.otlpHTTPAddr == "" && startedMsg == "collector started") {
			t.Fatalf("collector started without otlp_grpc/http addresses:\n%s", p.logText())
		}
	case <-p.logDone:
		p.wait()
		t.Fatalf("collector exited before starting (%v):\n%s", p.state, p.logText())
	case <-time.After(30 * time.Second):
		t.Fatalf("collector did not log %q within 30s:\n%s", startedMsg, p.logText())
	}
	return p
}

func (p *procCollector) readLog(r io.Reader, started chan<- map[string]any) {
	defer close(p.logDone)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var rec map[string]any
		_ = json.Unmarshal([]byte(line), &rec)
		p.mu.Lock()
		p.logs = append(p.logs, line)
		if rec["level"] == "ERROR" || (rec == nil && strings.Contains(line, "panic")) {
			p.errors = append(p.errors, line)
		}
		p.mu.Unlock()
		if rec["msg"] == p.startedMsg {
			select {
			case started <- rec:
			default:
			}
		}
	}
}

// logText returns everything the collector logged so far.
func (p *procCollector) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logs, "\n")
}

// errorLogs returns the log lines at level ERROR (and panics).
func (p *procCollector) errorLogs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errors...)
}

// wait reaps the process after its stderr closed.
func (p *procCollector) wait() {
	<-p.logDone
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.waited {
		p.waited = true
		p.cmd.Wait()
		p.state = p.cmd.ProcessState
	}
}

// sigkill kills the process with SIGKILL and reaps it.
func (p *procCollector) sigkill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL collector: %v", err)
	}
	p.wait()
}

// terminate sends SIGTERM and waits up to timeout for the exit; it returns
// the exit code.
func (p *procCollector) terminate(t testing.TB, timeout time.Duration) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM collector: %v", err)
	}
	done := make(chan struct{})
	go func() { p.wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		p.kill()
		t.Fatalf("collector did not exit within %s of SIGTERM:\n%s", timeout, p.logText())
	}
	return p.state.ExitCode()
}

// kill ends the process if it still runs (test cleanup).
func (p *procCollector) kill() {
	p.mu.Lock()
	waited := p.waited
	p.mu.Unlock()
	if !waited {
		p.cmd.Process.Kill()
		p.wait()
	}
}

// waitReady polls /readyz until it answers 200.
func (p *procCollector) waitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.httpAddr + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("collector not ready within %s (last: %s):\n%s", timeout, last, p.logText())
}
