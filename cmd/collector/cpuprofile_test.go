package main

import (
	"os"
	"path/filepath"
	"runtime/pprof"
	"testing"
)

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestStartCPUProfile checks that FLOWSCOPE_CPUPROFILE's helper reports why
// it cannot profile (never a nil error on failure) and leaves no file open
// when profiling cannot start, and that a started profile is written.
func TestStartCPUProfile(t *testing.T) {
	dir := t.TempDir()
	if _, err := startCPUProfile(filepath.Join(dir, "missing", "cpu.pprof")); err == nil {
		t.Error("no error for a file in a missing directory")
	}

	path := filepath.Join(dir, "cpu.pprof")
	stop, err := startCPUProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A second profile cannot start while one runs: the error says so and
	// the second file is closed.
	before := openFDs(t)
	if _, err := startCPUProfile(filepath.Join(dir, "second.pprof")); err == nil {
		t.Error("no error starting a second CPU profile")
	}
	if after := openFDs(t); after != before {
		t.Errorf("open files %d after a failed start, %d before: the file leaked", after, before)
	}
	stop()
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Errorf("profile not written: %v", err)
	}
	pprof.StopCPUProfile() // harmless when none runs
}
