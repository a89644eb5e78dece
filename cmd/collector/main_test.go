package main

import (
	"bytes"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/goleak"
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
	code, stdout, stderr := runArgs(t, "version")
	if code != 0 || stderr != "" {
		t.Fatalf("version: exit %d, stderr %q", code, stderr)
	}
	want := regexp.MustCompile(`^collector \S+ \(` + regexp.QuoteMeta(runtime.Version()) + `\)\n$`)
	if !want.MatchString(stdout) {
		t.Errorf("version printed %q, want it to match %s", stdout, want)
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
		{name: "serve --help", args: []string{"serve", "--help"}, wantStderr: "--otlp-grpc-addr ADDR"},
		{name: "--help without command", args: []string{"--help"}, wantStderr: "--retention DURATION"},
		{name: "-h after flags", args: []string{"--data-dir=/tmp/x", "-h"}, wantStderr: "Usage: collector serve"},
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

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "unknown command", args: []string{"frobnicate"}, want: "collector: unknown command \"frobnicate\"\n\nUsage: collector [command] [flags]"},
		{name: "unknown flag", args: []string{"--no-such-flag"}, want: "collector serve: flag provided but not defined: -no-such-flag\nRun \"collector serve --help\""},
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
