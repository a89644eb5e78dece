package collector

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/ingest/importer/importhttp"
)

const lampFlow = "../../testdata/spigo/json_metrics/lamp_flow.json"

// TestStartRemovesStaleSpools leaves the spool of a collector killed
// while importing, and a file that is not a spool, in the data directory:
// the next start removes the spool only.
func TestStartRemovesStaleSpools(t *testing.T) {
	dir := t.TempDir()
	tmp := spoolDir(dir)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(tmp, importhttp.SpoolPrefix+"123456")
	other := filepath.Join(tmp, "notes.txt")
	for _, p := range []string{stale, other} {
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-time.Minute)
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	c := startTest(t, dir)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale spool still there after start (stat: %v)", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a file that is not a spool was removed: %v", err)
	}
	// Uploads spool there, and leave nothing behind.
	f, err := os.Open(lampFlow)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Post("http://"+c.Addrs().HTTP+importhttp.Path+"?name=lamp_flow.json", "application/octet-stream", f)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("import: %d %s", resp.StatusCode, body)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), importhttp.SpoolPrefix) {
			t.Errorf("spool %s left after the import", e.Name())
		}
	}
}
