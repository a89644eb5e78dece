package collector

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(floodChildEnv) != "" {
		// The re-executed test binary of TestConnectionFlood: no leak
		// check (it is killed).
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m)
}
