package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flowscope/flowscope/internal/logtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func noEnv(string) string { return "" }

// runArgs runs the command line in-process and returns its exit code and
// outputs.
func runArgs(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, noEnv, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	want := regexp.MustCompile(`^collector \S+ \(` + regexp.QuoteMeta(runtime.Version()) + `(, [^,()]+)*\)\n$`)
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		code, stdout, stderr := runArgs(t, args...)
		if code != 0 || stderr != "" {
			t.Fatalf("%s: exit %d, stderr %q", args, code, stderr)
		}
		if !want.MatchString(stdout) {
			t.Errorf("%s printed %q, want it to match %s", args, stdout, want)
		}
	}
}

func TestVersionLine(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var out []debug.BuildSetting
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	gov := runtime.Version()
	tests := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build info", nil, false, "dev (" + gov + ")"},
		{"go test", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true, "dev (" + gov + ")"},
		{"go install @v1.2.0", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}}, true, "v1.2.0 (" + gov + ")"},
		{
			"go build in a checkout",
			&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("vcs", "git", "vcs.revision", "0123456789abcdef0123", "vcs.time", "2026-05-01T12:00:00Z", "vcs.modified", "false")},
			true, "dev (" + gov + ", revision 0123456789ab, 2026-05-01T12:00:00Z)",
		},
		{
			"with uncommitted changes",
			&debug.BuildInfo{Main: debug.Module{Version: "v1.3.0-0.20260501120000-0123456789ab+dirty"}, Settings: vcs("vcs.revision", "0123456789abcdef", "vcs.modified", "true")},
			true, "v1.3.0-0.20260501120000-0123456789ab+dirty (" + gov + ", revision 0123456789ab modified)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionLine(tt.info, tt.ok); got != tt.want {
				t.Errorf("versionLine = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBuildVersion(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	version = "v1.2.3"
	if got := buildVersion(); got != "v1.2.3" {
		t.Errorf("buildVersion() = %q with -X main.version=v1.2.3", got)
	}
	version = "dev"
	if got := buildVersion(); got == "" || got == "(devel)" {
		t.Errorf("buildVersion() = %q, want a module version or dev", got)
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStdout string // fragment, or "" for no output
		wantStderr string
	}{
		{name: "help", args: []string{"help"}, wantStdout: "Usage: collector [command] [flags]"},
		{name: "help serve", args: []string{"help", "serve"}, wantStdout: "FLOWSCOPE_DATA_DIR"},
		{name: "help import", args: []string{"help", "import"}, wantStdout: "  --data-dir DIR\n"},
		{name: "serve --help", args: []string{"serve", "--help"}, wantStderr: "--otlp-grpc-addr ADDR"},
		{name: "--help without command", args: []string{"--help"}, wantStdout: "--retention DURATION"},
		{name: "-h without command", args: []string{"-h"}, wantStdout: "Usage: collector [command] [flags]"},
		{name: "-h after flags", args: []string{"--data-dir=/tmp/x", "-h"}, wantStderr: "Usage: collector serve"},
		{name: "import --help", args: []string{"import", "--help"}, wantStderr: "  --to URL\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runArgs(t, tt.args...)
			if code != 0 {
				t.Errorf("exit code %d, want 0; stderr %q", code, stderr)
			}
			check := func(name, got, want string) {
				if want == "" && got != "" || !strings.Contains(got, want) {
					t.Errorf("%s = %q, want it to contain %q", name, got, want)
				}
			}
			check("stdout", stdout, tt.wantStdout)
			check("stderr", stderr, tt.wantStderr)
		})
	}
}

// TestTopLevelHelp checks that the program's help names every command with
// its purpose, and the flags of serve, the default command.
func TestTopLevelHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-help"}, {"help"}} {
		code, stdout, stderr := runArgs(t, args...)
		if code != exitOK || stderr != "" {
			t.Fatalf("%s: exit %d, stderr %q", args, code, stderr)
		}
		for _, want := range []string{
			"Usage: collector [command] [flags]",
			"\n  serve     run the collector",
			"\n  import    import spigo, Zipkin and OTLP/JSON files",
			"\n  version   print the version",
			"\n  help      print this help",
			"Usage: collector serve [flags]", // then the settings of serve
			"  --retention DURATION\n",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%s: help lacks %q:\n%s", args, want, stdout)
			}
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "unknown command", args: []string{"frobnicate"}, want: "collector: unknown command \"frobnicate\"\n\nUsage: collector [command] [flags]"},
		{name: "unknown flag", args: []string{"--no-such-flag"}, want: "collector serve: flag provided but not defined: --no-such-flag\nRun \"collector serve --help\""},
		{name: "bad flag value", args: []string{"-retention=soon"}, want: `collector serve: invalid value "soon" for flag --retention:`},
		{name: "invalid setting", args: []string{"serve", "--retention=1s"}, want: "collector serve: invalid configuration: store.retention = 1s: must be at least 1m"},
		{name: "missing config file", args: []string{"--config", "testdata/none.yml"}, want: "collector serve: read config file: open testdata/none.yml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runArgs(t, tt.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d", code, exitUsage)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.want)
			}
		})
	}
}

// TestServeLog runs serve with JSON logs, imports a file through its
// upload endpoint (the importer logs under the import handler's logger),
// and stops it: every log line has each key once, and "collector stopped"
// is logged once.
func TestServeLog(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var logs logtest.Buffer
	done := make(chan int, 1)
	go func() {
		done <- serve(ctx, []string{"--data-dir", t.TempDir(), "--log-format", "json", "--log-level", "debug",
			"--http-addr", "127.0.0.1:0", "--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0", "--zipkin-addr", "127.0.0.1:0"}, noEnv, &logs)
	}()
	var httpAddr string
	for deadline := time.Now().Add(20 * time.Second); httpAddr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for line := range strings.Lines(logs.String()) {
			var rec struct{ Msg, HTTP string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "collector started" {
				httpAddr = rec.HTTP
			}
		}
	}
	if httpAddr == "" {
		cancel()
		<-done
		t.Fatalf("no \"collector started\" line:\n%s", logs.String())
	}
	var stdout, stderr bytes.Buffer
	if code := importCmd([]string{"--to", "http://" + httpAddr, "--progress", "none", "../../testdata/spigo/json_metrics/lamp_flow.json"}, &stdout, &stderr); code != exitOK {
		t.Errorf("import: exit %d: %s", code, stderr.String())
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("serve: exit %d", code)
	}

	stopped, imports := 0, 0
	for line := range strings.Lines(logs.String()) {
		keys, err := jsonKeys(line)
		if err != nil {
			t.Errorf("log line %q: %v", line, err)
			continue
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if seen[k] {
				t.Errorf("key %q twice in log line %s", k, line)
			}
			seen[k] = true
		}
		if strings.Contains(line, `"msg":"collector stopped"`) {
			stopped++
		}
		if strings.Contains(line, `"component":"importer"`) {
			imports++
		}
	}
	if stopped != 1 {
		t.Errorf("\"collector stopped\" logged %d times, want once:\n%s", stopped, logs.String())
	}
	if imports == 0 {
		t.Errorf("no log line of the importer:\n%s", logs.String())
	}
}

// jsonKeys returns the top-level keys of the JSON object line, in order,
// repeated ones included.
func jsonKeys(line string) ([]string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
	}
	return keys, nil
}
