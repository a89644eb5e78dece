// Command collector is the Flowscope binary: it receives OTLP and Zipkin
// telemetry, stores and aggregates it, and serves the UI and query API.
//
// Usage:
//
//	collector [serve] [flags]         run the collector (the default)
//	collector query --peers URL,… [flags]  run a query front end over several collectors
//	collector import [flags] FILE...  import simulator, Zipkin and OTLP/JSON files
//	collector version                 print the version (also --version)
//	collector help [serve|import]     print help (also --help, -h)
//
// `collector --help` lists the commands and every setting of serve. Flags
// are spelled with two dashes (--data-dir), in help and in errors alike; one
// dash is accepted too. Configuration is loaded by package internal/config;
// the components are wired by internal/collector.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/flowscope/flowscope/internal/collector"
	"github.com/flowscope/flowscope/internal/config"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
// When it is left at "dev", the module version from the build info is used.
var version = "dev"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the collector failed while running
	exitUsage = 2 // bad command line or configuration
)

const usage = `Usage: collector [command] [flags]

Flowscope collects OpenTelemetry and Zipkin traces and metrics, and shows the
flow graph and latency distributions of a microservice system.

Commands:
  serve     run the collector (the default when no command is given)
  query     run a query front end over several collectors ("--peers URL,...";
            docs/scale-out.md); it takes the settings of serve
  import    import spigo, Zipkin and OTLP/JSON files ("collector import --help")
  version   print the version (also "collector --version")
  help      print this help; "help serve" or "help import" prints one command's

Run "collector serve --help" for the flags, environment variables and
configuration file keys of serve alone.
`

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run executes the command line args (without the program name) and
// returns the process exit code.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd, rest := "serve", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, rest = args[0], args[1:]
	}
	if len(args) > 0 {
		// The process-level flags, alone or first: --help is the help of
		// the whole program, not only of serve (the default command).
		switch args[0] {
		case "-h", "-help", "--help":
			cmd = "help"
		case "-version", "--version":
			cmd = "version"
		}
	}
	switch cmd {
	case "serve":
		return serve(context.Background(), rest, getenv, stderr)
	case "query":
		return serveQuery(context.Background(), rest, getenv, stderr)
	case "import":
		return importCmd(rest, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "collector %s\n", versionLine(debug.ReadBuildInfo()))
		return exitOK
	case "help":
		if len(rest) > 0 && (rest[0] == "serve" || rest[0] == "query") {
			config.PrintUsage(stdout)
			return exitOK
		}
		if len(rest) > 0 && rest[0] == "import" {
			return importCmd([]string{"--help"}, stdout, stdout)
		}
		// The program's help: the commands, then the settings of serve,
		// which runs when no command is given.
		io.WriteString(stdout, usage+"\n")
		config.PrintUsage(stdout)
		return exitOK
	default:
		fmt.Fprintf(stderr, "collector: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

// serve loads the configuration and runs the collector until SIGINT or
// SIGTERM, or until parent is done.
func serve(parent context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	return runCommand(parent, "serve", args, getenv, stderr)
}

// serveQuery runs a query front end (docs/scale-out.md) until SIGINT or
// SIGTERM, or until parent is done.
func serveQuery(parent context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	return runCommand(parent, "query", args, getenv, stderr)
}

// runCommand loads the configuration of serve or query and runs it.
func runCommand(parent context.Context, cmd string, args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := config.Load(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err == nil {
		err = checkMode(cmd, cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "collector %s: %v\nRun \"collector %s --help\" for the settings.\n", cmd, err, cmd)
		return exitUsage
	}
	logger := cfg.NewLogger(stderr)

	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, restore the default handling so that a second
	// one kills a shutdown that hangs.
	context.AfterFunc(ctx, stop)

	logger.Info("starting collector", "version", buildVersion(), "go", runtime.Version())
	// FLOWSCOPE_CPUPROFILE=FILE writes a CPU profile of the whole run, for
	// diagnosing performance (go tool pprof FILE).
	if path := os.Getenv("FLOWSCOPE_CPUPROFILE"); path != "" {
		if stop, err := startCPUProfile(path); err != nil {
			logger.Warn("cannot write CPU profile", "path", path, "err", err)
		} else {
			defer stop()
		}
	}
	// FLOWSCOPE_HEAPPROFILE=FILE rewrites a heap profile every 10 s, for
	// diagnosing memory use under load (go tool pprof FILE).
	if path := os.Getenv("FLOWSCOPE_HEAPPROFILE"); path != "" {
		go writeHeapProfiles(ctx, path, 10*time.Second, logger)
	}
	// collector.Run logs "collector stopped" itself, once the store is
	// closed; only a failure is left to report.
	runFn := collector.Run
	if cmd == "query" {
		runFn = collector.RunQuery
	}
	if err := runFn(ctx, cfg, logger); err != nil {
		logger.Error("collector failed", "err", err)
		return exitError
	}
	return exitOK
}

// checkMode refuses the settings of one command given to the other: a
// front end without peers, a node with them.
func checkMode(cmd string, cfg config.Config) error {
	peers := len(cfg.Query.Peers) > 0 || cfg.Query.PeersFile != ""
	switch {
	case cmd == "query" && !peers:
		return errors.New("no peers: set query.peers (--peers http://node:8686,...) or query.peers_file (--peers-file)")
	case cmd == "serve" && peers:
		return errors.New("query.peers or query.peers_file is set: those configure a query front end; run \"collector query\"")
	}
	return nil
}

// startCPUProfile starts a CPU profile written to path and returns the
// function that stops it and closes the file. On failure nothing is left
// open.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// writeHeapProfiles writes a heap profile to path every interval until
// ctx is done, replacing the previous one.
func writeHeapProfiles(ctx context.Context, path string, interval time.Duration, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f, err := os.Create(path + ".tmp")
		if err == nil {
			err = pprof.Lookup("heap").WriteTo(f, 0)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err == nil {
			err = os.Rename(path+".tmp", path)
		}
		if err != nil {
			logger.Warn("cannot write heap profile", "path", path, "err", err)
			return
		}
	}
}

// buildVersion returns the version set with -ldflags, else the main
// module's version from the build info, else "dev".
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	return moduleVersion(info, ok)
}

// moduleVersion returns the version set with -ldflags, else the main
// module's version from info (when ok), else "dev".
func moduleVersion(info *debug.BuildInfo, ok bool) string {
	if version != "dev" {
		return version
	}
	if ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return version
}

// versionLine describes the build from its build info (ok false: none):
// the version (see moduleVersion), then in parentheses the Go version and,
// when the binary was built from a version control checkout, the revision
// (12 digits), "modified" for uncommitted changes, and the commit time:
//
//	v1.2.0 (go1.26.1, revision 0123456789ab, 2026-05-01T12:00:00Z)
//	dev (go1.26.1, revision 0123456789ab modified, 2026-05-01T12:00:00Z)
func versionLine(info *debug.BuildInfo, ok bool) string {
	parts := []string{runtime.Version()}
	if ok {
		var rev, at, modified string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = " modified"
				}
			}
		}
		if rev != "" {
			parts = append(parts, "revision "+rev[:min(len(rev), 12)]+modified)
		}
		if at != "" {
			parts = append(parts, at)
		}
	}
	return fmt.Sprintf("%s (%s)", moduleVersion(info, ok), strings.Join(parts, ", "))
}
