package synthetics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReload: New loads the checks file; a reload of a file that does not
// validate keeps the checks in use and reports why; a good one replaces
// them.
func TestReload(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "checks.yml")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(`checks:
  - name: home
    every: 1h
    steps:
      - {name: get, request: {url: %q}, assert: [{status: 200}]}
`, srv.URL+"/"))
	h := newHarness(t, nil, func(o *Options) { o.Path = path })
	h.p.Start()
	st := h.p.Status()
	if st.Path != path || !slices.Equal(checkNames(st.Checks), []string{"home"}) || st.LoadedAt.IsZero() ||
		st.Checks[0].File != path || st.Checks[0].Line == 0 {
		t.Fatalf("status after New: %+v", st)
	}
	if run, err := h.p.RunNow(context.Background(), "home"); err != nil || !run.OK {
		t.Fatalf("RunNow(home): %+v, %v", run, err)
	}

	write("checks:\n  - name: bad\n    every: 10ms\n    steps: [{name: get, request: {url: 'http://x/${NOPE}'}}]\n")
	err := h.p.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), path+":3:") {
		t.Fatalf("Reload of a bad file: %v", err)
	}
	st = h.p.Status()
	if !slices.Equal(checkNames(st.Checks), []string{"home"}) || st.LastReloadError == "" || st.LastReloadAt.IsZero() {
		t.Errorf("status after a bad reload: %+v", st)
	}
	if v, _ := h.metric(t, "flowscope_synthetic_checks_last_reload_successful", nil); v != 0 {
		t.Errorf("last_reload_successful %v after a failure", v)
	}
	if v, _ := h.metric(t, "flowscope_synthetic_checks_reloads_total", map[string]string{"result": "failure"}); v != 1 {
		t.Errorf("reloads_total{failure} %v", v)
	}
	if !strings.Contains(h.logs.String(), "synthetic checks not reloaded") {
		t.Errorf("the failed reload is not logged: %s", h.logs.String())
	}

	write(fmt.Sprintf("checks:\n  - {name: other, every: 1h, steps: [{name: get, request: {url: %q}}]}\n", srv.URL))
	if err := h.p.Reload(context.Background()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	st = h.p.Status()
	if !slices.Equal(checkNames(st.Checks), []string{"other"}) || st.LastReloadError != "" {
		t.Errorf("status after a good reload: %+v", st)
	}
	if v, _ := h.metric(t, "flowscope_synthetic_checks_last_reload_successful", nil); v != 1 {
		t.Errorf("last_reload_successful %v after a success", v)
	}
	if _, err := h.p.RunNow(context.Background(), "home"); !errors.Is(err, ErrUnknownCheck) {
		t.Errorf("RunNow(home) after its removal: %v", err)
	}

	// New refuses a bad file; Reload without a path says so.
	write("checks: [{name: x}]\n")
	if _, err := New(Options{Path: path}); err == nil {
		t.Error("New accepted a bad checks file")
	}
	p, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(context.Background()); !errors.Is(err, ErrNoChecksPath) {
		t.Errorf("Reload without a path: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Error(err)
	}
}
