package uitest

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/config"
)

// TestDevServer serves the seeded shop topology (and, with
// FLOWSCOPE_UI_DEV_BIG=1, the 300-node graph) for working on the UI by hand:
//
//	FLOWSCOPE_UI_DEV=1 go test ./web/uitest -run TestDevServer -v -timeout 0
//
// It prints the UI address and runs for FLOWSCOPE_UI_DEV_MINUTES (default
// 30). FLOWSCOPE_UI_DEV_RULES=PATH loads alert rules.
func TestDevServer(t *testing.T) {
	if os.Getenv("FLOWSCOPE_UI_DEV") == "" {
		t.Skip("set FLOWSCOPE_UI_DEV=1 to serve a seeded collector for manual UI work")
	}
	var opts []func(*config.Config)
	if p := os.Getenv("FLOWSCOPE_UI_DEV_RULES"); p != "" {
		opts = append(opts, withRules(p))
	}
	s := startCollector(t, opts...)
	seedShop(t, s)
	if os.Getenv("FLOWSCOPE_UI_DEV_BIG") != "" {
		bigTopology(t, s, 300, 1000)
	}
	t.Logf("UI at %s", s.base)
	d := 30 * time.Minute
	if m, err := time.ParseDuration(os.Getenv("FLOWSCOPE_UI_DEV_MINUTES") + "m"); err == nil && m > 0 {
		d = m
	}
	time.Sleep(d)
}

// TestDevShots opens routes on a running UI and writes screenshots, with
// the browser's errors, for working on the UI by hand:
//
//	FLOWSCOPE_UI_BASE=http://127.0.0.1:8686 FLOWSCOPE_UI_ROUTES='map,traces' go test ./web/uitest -run TestDevShots -v
func TestDevShots(t *testing.T) {
	base := os.Getenv("FLOWSCOPE_UI_BASE")
	if base == "" {
		t.Skip("set FLOWSCOPE_UI_BASE and FLOWSCOPE_UI_ROUTES to take screenshots of a running UI")
	}
	b := newTab(t, base)
	for i, route := range strings.Split(os.Getenv("FLOWSCOPE_UI_ROUTES"), ",") {
		b.open(route)
		time.Sleep(2 * time.Second)
		path := b.shot(fmt.Sprintf("dev-%02d", i))
		t.Logf("%s → %s", route, path)
		if e := os.Getenv("FLOWSCOPE_UI_EVAL"); e != "" {
			t.Logf("  eval: %s", eval[string](b, "JSON.stringify("+e+")"))
		}
		for _, p := range b.issues() {
			t.Logf("  %s", p)
		}
	}
}
