package benchproc

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestStart runs small shell scripts that log like the collector.
func TestStart(t *testing.T) {
	const started = `{"level":"INFO","msg":"collector started","otlp_grpc":"127.0.0.1:1","http":"127.0.0.1:2"}`
	tests := []struct {
		name       string
		script     string
		msg        string
		wantErr    string // a substring of Start's error; "" for success
		grpc, http string
		errorLogs  int
		exitCode   int
	}{
		{name: "started", msg: StartedMsg,
			script: `trap 'exit 3' TERM; echo '{"level":"ERROR","msg":"x"}' >&2; echo '` + started + `' >&2; while :; do sleep 0.05; done`,
			grpc:   "127.0.0.1:1", http: "127.0.0.1:2", errorLogs: 1, exitCode: 3},
		{name: "grpc attribute", msg: "query front end started",
			script: `trap 'exit 0' TERM; echo '{"level":"INFO","msg":"query front end started","grpc":"127.0.0.1:3","http":"127.0.0.1:4"}' >&2; while :; do sleep 0.05; done`,
			grpc:   "127.0.0.1:3", http: "127.0.0.1:4"},
		{name: "exits first", msg: StartedMsg, script: `echo 'no json' >&2; exit 1`, wantErr: "exited before starting"},
		{name: "no addresses", msg: StartedMsg,
			script: `echo '{"msg":"collector started"}' >&2; sleep 30`, wantErr: "without addresses"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Start(context.Background(), []string{"/bin/sh", "-c", tc.script}, tc.msg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					if p != nil {
						p.Kill()
					}
					t.Fatalf("Start: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Kill()
			if p.GRPCAddr() != tc.grpc || p.HTTPAddr() != tc.http || p.PID() <= 0 {
				t.Errorf("addresses %q %q pid %d, want %q %q", p.GRPCAddr(), p.HTTPAddr(), p.PID(), tc.grpc, tc.http)
			}
			code, logs, err := p.Stop(10 * time.Second)
			if err != nil || code != tc.exitCode || logs != tc.errorLogs || p.ErrorLogs() != tc.errorLogs {
				t.Errorf("Stop: code %d, %d error logs (%d), %v; want %d, %d\n%s", code, logs, p.ErrorLogs(), err, tc.exitCode, tc.errorLogs, p.Tail())
			}
			p.Kill() // no-op after Stop
		})
	}
}

// TestParse checks the /proc parsers on fixed input and reads this
// process's figures.
func TestParse(t *testing.T) {
	tests := []struct {
		name string
		f    func([]byte) (float64, error)
		in   string
		want float64
		bad  bool
	}{
		{"stat", parseProcStat, "42 (a b) c) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0", 4, false},
		{"stat short", parseProcStat, "42 (x) S 1 2", 0, true},
		{"stat no name", parseProcStat, "42 x S", 0, true},
		{"machine", parseMachineStat, "cpu  100 20 30 1000 50 5 5 40 0 0\ncpu0 1 2 3", 2, false},
		{"machine bad", parseMachineStat, "intr 1 2 3", 0, true},
	}
	for _, tc := range tests {
		got, err := tc.f([]byte(tc.in))
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("%s: %v, %v; want %v (error %v)", tc.name, got, err, tc.want, tc.bad)
		}
	}
	if _, err := ProcCPUSeconds(os.Getpid()); err != nil {
		t.Error(err)
	}
	if _, err := MachineBusySeconds(); err != nil {
		t.Error(err)
	}
	if st, err := ReadProcStatus(os.Getpid()); err != nil || st["VmRSS"] <= 0 {
		t.Errorf("ReadProcStatus: %v %v", st, err)
	}
	if LoadAvg() == "unknown" || SelfCPUSeconds() < 0 {
		t.Error("no load average or CPU time")
	}
}
