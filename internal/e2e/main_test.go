package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the collector binary shared by the tests that run it
// (sharedCollectorBin) once they are done.
func TestMain(m *testing.M) {
	code := m.Run()
	if collectorBin != "" {
		os.RemoveAll(filepath.Dir(collectorBin))
	}
	os.Exit(code)
}
