package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/collector"
	"github.com/flowscope/flowscope/internal/config"
)

// server is an in-process collector on ephemeral ports.
type server struct {
	*collector.Collector
	addrs collector.Addrs
	dir   string
}

// startServer starts a collector on a fresh data dir (or dir, if given).
func startServer(t testing.TB, dir string, mutate ...func(*config.Config)) *server {
	t.Helper()
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	return startServerLogging(t, dir, w, mutate...)
}

// startServerLogging is startServer logging to w.
func startServerLogging(t testing.TB, dir string, w io.Writer, mutate ...func(*config.Config)) *server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Receivers.OTLPGRPCAddr = "127.0.0.1:0"
	cfg.Receivers.OTLPHTTPAddr = "127.0.0.1:0"
	cfg.Receivers.ZipkinAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := collector.Start(context.Background(), cfg, cfg.NewLogger(w))
	if err != nil {
		t.Fatal(err)
	}
	s := &server{Collector: c, addrs: c.Addrs(), dir: dir}
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *server) stop(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// get fetches an API path and returns status and body.
func (s *server) get(t testing.TB, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get("http://" + s.addrs.HTTP + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}
