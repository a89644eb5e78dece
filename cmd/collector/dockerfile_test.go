package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/flowscope/flowscope/internal/config"
)

// There is no Docker engine in CI, so these tests check the properties the
// Dockerfile promises by reading it, and check that the build it runs yields
// a static binary.

// instruction is one Dockerfile instruction with its continuation lines
// joined.
type instruction struct {
	cmd   string   // upper-case instruction, e.g. "COPY"
	flags []string // leading --name=value options
	args  string   // the rest
	line  int
}

// stage is the instructions from one FROM up to the next.
type stage struct {
	from  instruction
	image string // base image with ARGs expanded
	insts []instruction
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.insts {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func parseDockerfile(t *testing.T, text string) (globalArgs map[string]string, stages []stage) {
	t.Helper()
	var insts []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue // comments may sit inside continuations too
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, rest, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		in := instruction{cmd: strings.ToUpper(cmd), line: start}
		rest = strings.TrimSpace(rest)
		for strings.HasPrefix(rest, "--") {
			var f string
			f, rest, _ = strings.Cut(rest, " ")
			in.flags = append(in.flags, f)
			rest = strings.TrimSpace(rest)
		}
		in.args = rest
		insts = append(insts, in)
		cur.Reset()
	}

	globalArgs = map[string]string{}
	expand := func(s string) string {
		return os.Expand(s, func(k string) string { return globalArgs[k] })
	}
	for _, in := range insts {
		switch {
		case in.cmd == "FROM":
			image, _, _ := strings.Cut(in.args, " ")
			stages = append(stages, stage{from: in, image: expand(image)})
		case len(stages) == 0 && in.cmd == "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			globalArgs[k] = v
		case len(stages) == 0:
			t.Fatalf("Dockerfile line %d: %s before the first FROM", in.line, in.cmd)
		default:
			stages[len(stages)-1].insts = append(stages[len(stages)-1].insts, in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a final stage", len(stages))
	}
	return globalArgs, stages
}

// envPairs parses the KEY=VALUE pairs of ENV instructions.
func envPairs(t *testing.T, insts []instruction) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, in := range insts {
		for _, pair := range strings.Fields(in.args) {
			k, v, ok := strings.Cut(pair, "=")
			if !ok {
				t.Fatalf("Dockerfile line %d: ENV %q: use the KEY=VALUE form", in.line, in.args)
			}
			env[k] = strings.Trim(v, `"`)
		}
	}
	return env
}

// listArgs splits the JSON-array or plain form of an instruction's args.
func listArgs(args string) []string {
	if strings.HasPrefix(args, "[") {
		return regexp.MustCompile(`"([^"]*)"`).FindAllString(args, -1)
	}
	return strings.Fields(args)
}

func unquote(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strings.Trim(s, `"`)
	}
	return out
}

func goModVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	_, stages := parseDockerfile(t, string(data))
	build, final := stages[0], stages[len(stages)-1]

	t.Run("build stage uses go.mod's Go version", func(t *testing.T) {
		want := goModVersion(t)
		name, tag, _ := strings.Cut(build.image, ":")
		tagVersion, _, _ := strings.Cut(tag, "-")
		if name != "golang" || (tagVersion != want && !strings.HasPrefix(want, tagVersion+".")) {
			t.Errorf("build stage FROM %s, want golang:%s (go.mod says go %s)", build.image, want, want)
		}
	})

	t.Run("static, trimmed, versioned build", func(t *testing.T) {
		env := envPairs(t, build.all("ENV"))
		var goBuild string
		for _, in := range build.all("RUN") {
			if strings.Contains(in.args, "go build") {
				goBuild = in.args
			}
		}
		if goBuild == "" {
			t.Fatal("build stage has no RUN go build")
		}
		if env["CGO_ENABLED"] != "0" && !strings.Contains(goBuild, "CGO_ENABLED=0") {
			t.Error("build stage does not set CGO_ENABLED=0")
		}
		for _, want := range []string{"-trimpath", "-s -w", "-X main.version=${VERSION}", "./cmd/collector"} {
			if !strings.Contains(goBuild, want) {
				t.Errorf("go build lacks %q: %s", want, goBuild)
			}
		}
		if !slices.ContainsFunc(build.all("ARG"), func(in instruction) bool { return strings.HasPrefix(in.args, "VERSION") }) {
			t.Error("build stage has no ARG VERSION")
		}
	})

	t.Run("runs as non-root", func(t *testing.T) {
		users := final.all("USER")
		nonrootBase := strings.HasPrefix(final.image, "gcr.io/distroless/") && strings.HasSuffix(final.image, ":nonroot")
		if len(users) == 0 && !nonrootBase {
			t.Fatalf("final stage FROM %s sets no USER", final.image)
		}
		for _, u := range users {
			user, _, _ := strings.Cut(u.args, ":")
			if user == "root" || user == "0" {
				t.Errorf("line %d: USER %s", u.line, u.args)
			}
			if !nonrootBase && !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(user) {
				t.Errorf("line %d: USER %s: want a numeric non-root user on a base without one", u.line, u.args)
			}
		}
	})

	t.Run("exposes the four ports", func(t *testing.T) {
		var ports []string
		for _, in := range final.all("EXPOSE") {
			for _, p := range strings.Fields(in.args) {
				ports = append(ports, strings.TrimSuffix(p, "/tcp"))
			}
		}
		for _, want := range []string{"4317", "4318", "8686", "9411"} {
			if !slices.Contains(ports, want) {
				t.Errorf("EXPOSE lacks %s (has %v)", want, ports)
			}
		}
	})

	t.Run("data volume owned by the user", func(t *testing.T) {
		var volumes []string
		for _, in := range final.all("VOLUME") {
			volumes = append(volumes, unquote(listArgs(in.args))...)
		}
		if !slices.Contains(volumes, "/data") {
			t.Errorf("VOLUME lacks /data (has %v)", volumes)
		}
		owned := false
		for _, in := range final.all("COPY") {
			fields := strings.Fields(in.args)
			if len(fields) > 0 && fields[len(fields)-1] == "/data" {
				owned = slices.ContainsFunc(in.flags, func(f string) bool {
					return f == "--chown=65532:65532" || f == "--chown=nonroot:nonroot"
				})
			}
		}
		if !owned {
			t.Error("final stage does not COPY --chown=65532:65532 a /data directory")
		}
	})

	t.Run("environment opens the listeners", func(t *testing.T) {
		env := envPairs(t, final.all("ENV"))
		var help strings.Builder
		config.PrintUsage(&help)
		for k := range env {
			if strings.HasPrefix(k, "FLOWSCOPE_") && !strings.Contains(help.String(), "env "+k+",") {
				t.Errorf("ENV %s is not a setting", k)
			}
		}
		cfg, err := config.Load(nil, func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			t.Fatalf("the image's environment is not a valid configuration: %v", err)
		}
		got := map[string]string{
			"data dir": cfg.DataDir, "OTLP/gRPC": cfg.Receivers.OTLPGRPCAddr, "OTLP/HTTP": cfg.Receivers.OTLPHTTPAddr,
			"HTTP": cfg.HTTPAddr, "Zipkin": cfg.Receivers.ZipkinAddr,
		}
		want := map[string]string{
			"data dir": "/data", "OTLP/gRPC": "0.0.0.0:4317", "OTLP/HTTP": "0.0.0.0:4318",
			"HTTP": "0.0.0.0:8686", "Zipkin": "0.0.0.0:9411",
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s = %q in the image, want %q", k, got[k], w)
			}
		}
	})

	t.Run("entrypoint serves", func(t *testing.T) {
		eps := final.all("ENTRYPOINT")
		if len(eps) != 1 || !strings.HasPrefix(eps[0].args, "[") {
			t.Fatalf("want one exec-form ENTRYPOINT, got %v", eps)
		}
		ep := unquote(listArgs(eps[0].args))
		if len(ep) != 2 || ep[1] != "serve" {
			t.Fatalf("ENTRYPOINT %v, want [BINARY serve]", ep)
		}
		copied := slices.ContainsFunc(final.all("COPY"), func(in instruction) bool {
			fields := strings.Fields(in.args)
			return slices.Contains(in.flags, "--from=build") && fields[len(fields)-1] == ep[0]
		})
		if !copied {
			t.Errorf("ENTRYPOINT runs %s, which no COPY --from=build puts there", ep[0])
		}
	})
}

// TestStaticBuild builds the collector the way the Dockerfile does and
// checks that the binary is static and answers version and --help.
func TestStaticBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH")
	}
	bin := filepath.Join(t.TempDir(), "collector")
	build := exec.Command(goTool, "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.version=v0.0.0-test", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	if runtime.GOOS == "linux" {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("binary has a dynamic loader (PT_INTERP): not static")
			}
		}
		if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
			t.Errorf("binary imports shared libraries %v (%v): not static", libs, err)
		}
	}

	runBin := func(args ...string) (code int, stdout, stderr string) {
		var out, errOut bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		cmd.Env = []string{} // no FLOWSCOPE_* from the test's environment
		err := cmd.Run()
		var exitErr *exec.ExitError
		switch {
		case errors.As(err, &exitErr):
			code = exitErr.ExitCode()
		case err != nil:
			t.Fatalf("run %v: %v", args, err)
		}
		return code, out.String(), errOut.String()
	}
	if code, out, _ := runBin("version"); code != 0 || out != "collector v0.0.0-test ("+runtime.Version()+")\n" {
		t.Errorf("version: exit %d, output %q", code, out)
	}
	if code, _, errOut := runBin("serve", "--help"); code != 0 || !strings.Contains(errOut, "FLOWSCOPE_RETENTION") {
		t.Errorf("serve --help: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runBin("nonsense"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("nonsense: exit %d, stderr %q", code, errOut)
	}
}
