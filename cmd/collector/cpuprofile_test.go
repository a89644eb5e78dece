package main

import (
	"os"
	"path/filepath"
	"runtime/pprof"
	"testing"
)

// openOn counts the process's file descriptors open on path. (Counting
// all of them is not stable: the runtime and other goroutines open and
// close descriptors of their own meanwhile.)
func openOn(t *testing.T, path string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == path {
			n++
		}
	}
	return n
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
	if n := openOn(t, path); n != 1 {
		t.Fatalf("%d descriptors open on the running profile's file, want 1", n)
	}
	second := filepath.Join(dir, "second.pprof")
	if _, err := startCPUProfile(second); err == nil {
		t.Error("no error starting a second CPU profile")
	}
	if n := openOn(t, second); n != 0 {
		t.Errorf("%d descriptors open on the second file after its failed start: the file leaked", n)
	}
	stop()
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Errorf("profile not written: %v", err)
	}
	pprof.StopCPUProfile() // harmless when none runs
}
