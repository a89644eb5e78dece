package collector

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/config"
)

// testConfig returns the configuration of a collector on ephemeral
// 127.0.0.1 ports with its data in dir.
func testConfig(dir string) config.Config {
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Receivers.OTLPGRPCAddr = "127.0.0.1:0"
	cfg.Receivers.OTLPHTTPAddr = "127.0.0.1:0"
	cfg.Receivers.ZipkinAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	return cfg
}

// testLogger logs to stderr under -v, else nowhere.
func testLogger() *slog.Logger {
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// startTest starts a collector on a fresh data directory (or dir) and
// shuts it down at the end of the test.
func startTest(t *testing.T, dir string) *Collector {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	c, err := Start(context.Background(), testConfig(dir), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := c.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return c
}

// setVar sets *p to v for the duration of the test.
func setVar[T any](t *testing.T, p *T, v T) {
	old := *p
	*p = v
	t.Cleanup(func() { *p = old })
}
