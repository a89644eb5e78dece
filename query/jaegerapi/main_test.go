package jaegerapi

import (
	"flag"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Keep fuzz runs fuzzing rather than minimizing for a minute (as in
	// ingest/otlpjson); a -test.fuzzminimizetime flag still wins.
	_ = flag.Set("test.fuzzminimizetime", "5s")
	goleak.VerifyTestMain(m)
}
