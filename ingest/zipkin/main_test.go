package zipkin

import (
	"flag"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// A shorter default minimization keeps short fuzz runs fuzzing; a
	// -test.fuzzminimizetime on the command line still wins.
	_ = flag.Set("test.fuzzminimizetime", "5s")
	goleak.VerifyTestMain(m)
}
