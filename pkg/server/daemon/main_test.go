package daemon

import (
	"os"
	"testing"

	"github.com/v2m/v2m/pkg/server/sandbox"
)

// TestMain lets the test binary serve as the sandbox helper, as v2md's main does.
func TestMain(m *testing.M) {
	sandbox.Main()
	os.Exit(m.Run())
}
