package synthetics

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind: the
// scheduler, runs, and connections end with Stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
