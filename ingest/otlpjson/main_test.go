package otlpjson

import (
	"flag"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The fuzzer minimizes every new interesting input for up to a minute
	// by default, which for the multi-kilobyte OTLP seeds ate whole
	// 20-second fuzz runs. A shorter default keeps short runs fuzzing; a
	// -test.fuzzminimizetime on the command line still wins, since m.Run
	// parses the flags after this.
	_ = flag.Set("test.fuzzminimizetime", "5s")
	goleak.VerifyTestMain(m)
}
