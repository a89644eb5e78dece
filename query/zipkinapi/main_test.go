package zipkinapi

import (
	"flag"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Short fuzz runs keep fuzzing instead of minimizing; a
	// -test.fuzzminimizetime on the command line still wins.
	_ = flag.Set("test.fuzzminimizetime", "5s")
	goleak.VerifyTestMain(m)
}
