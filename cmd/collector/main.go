// Command collector is the Flowscope binary: it receives OTLP and Zipkin
// telemetry, stores and aggregates it, and serves the UI and query API.
//
// Usage:
//
//	collector [serve] [flags]   run the collector (the default)
//	collector import [flags] FILE...  import simulator, Zipkin and OTLP/JSON files
//	collector version           print the version
//	collector help [serve]      print help
//
// Run `collector serve --help` for every setting. Configuration is loaded by
// package internal/config; the components are wired by internal/collector.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"

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
  import    import spigo, Zipkin and OTLP/JSON files ("import --help")
  version   print the version
  help      print this help; "help serve" lists every setting

Run "collector serve --help" for the flags, environment variables and
configuration file keys.
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
	switch cmd {
	case "serve":
		return serve(rest, getenv, stderr)
	case "import":
		return importCmd(rest, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "collector %s (%s)\n", buildVersion(), runtime.Version())
		return exitOK
	case "help":
		if len(rest) > 0 && rest[0] == "serve" {
			config.PrintUsage(stdout)
			return exitOK
		}
		if len(rest) > 0 && rest[0] == "import" {
			return importCmd([]string{"--help"}, stdout, stdout)
		}
		io.WriteString(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "collector: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

// serve loads the configuration and runs the collector until SIGINT or
// SIGTERM.
func serve(args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := config.Load(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "collector serve: %v\nRun \"collector serve --help\" for the settings.\n", err)
		return exitUsage
	}
	logger := cfg.NewLogger(stderr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, restore the default handling so that a second
	// one kills a shutdown that hangs.
	context.AfterFunc(ctx, stop)

	logger.Info("starting collector", "version", buildVersion(), "go", runtime.Version())
	// FLOWSCOPE_CPUPROFILE=FILE writes a CPU profile of the whole run, for
	// diagnosing performance (go tool pprof FILE).
	if path := os.Getenv("FLOWSCOPE_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		} else {
			logger.Warn("cannot write CPU profile", "path", path, "err", err)
		}
	}
	if err := collector.Run(ctx, cfg, logger); err != nil {
		logger.Error("collector stopped", "err", err)
		return exitError
	}
	logger.Info("collector stopped")
	return exitOK
}

// buildVersion returns the version set with -ldflags, else the main
// module's version from the build info, else "dev".
func buildVersion() string {
	if version != "dev" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return version
}
