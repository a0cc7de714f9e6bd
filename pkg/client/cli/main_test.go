package cli_test

import (
	"os"
	"testing"

	"github.com/v2m/v2m/pkg/client/cli"
)

// runMainEnv makes the test binary run v2m itself (cli.Main), so that a test can start the
// real command line in a terminal of its own.
const runMainEnv = "V2M_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(cli.Main())
	}
	os.Exit(m.Run())
}
