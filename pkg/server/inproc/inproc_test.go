package inproc_test

import (
	"testing"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/inproc"
	"github.com/v2m/v2m/pkg/server/servertest"
)

func TestContract(t *testing.T) {
	servertest.TestJobUpdates(t, func(*testing.T) func() server.JobUpdates {
		b := inproc.New()
		return func() server.JobUpdates { return b }
	})
}
