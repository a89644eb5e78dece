package importer

import (
	"flag"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Minimizing a new input of FuzzImport runs it thousands of times; a
	// shorter default keeps short fuzz runs fuzzing. A
	// -test.fuzzminimizetime on the command line still wins.
	_ = flag.Set("test.fuzzminimizetime", "5s")
	goleak.VerifyTestMain(m)
}
