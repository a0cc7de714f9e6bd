package mongo

import (
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/servertest"
)

// ferretDBClaims says why FerretDB v1 lets concurrent claims all win. Its findAndModify
// (internal/handler/msg_findandmodify.go in v1.24.2) reads the documents matching the
// filter, applies the update in Go, and writes the result back with an UPDATE keyed by _id
// alone, without checking the filter again (the call carries a TODO naming FerretDB issue
// #2168; backends/sqlite/collection.go's UpdateAll is the write): two claims that read the
// queued job before either wrote both write it, and both are told they won. MongoDB applies
// findAndModify atomically per document (the filter is matched and the update applied under
// the document's lock), which is what JobStore's compare-and-set states rely on in
// production; against MongoDB the race subtests must hold.
const ferretDBClaims = "FerretDB v1 applies findAndModify as a read followed by an unconditional write by _id (FerretDB v1.24 internal/handler/msg_findandmodify.go); MongoDB applies it atomically per document"

func TestContractJobStore(t *testing.T) {
	var opts servertest.JobStoreOptions
	if ferretDB(t, openTest(t, 0)) {
		opts.NoAtomicClaims = ferretDBClaims
	}
	servertest.TestJobStore(t, func(t *testing.T, now func() time.Time) server.JobStore {
		db := openTest(t, 0)
		db.now = now
		return db.Jobs()
	}, opts)
}

func TestContractUploadStore(t *testing.T) {
	servertest.TestUploadStore(t, func(t *testing.T) server.UploadStore { return openTest(t, 0).Uploads() })
}

func TestContractSentLog(t *testing.T) {
	servertest.TestSentLog(t, func(t *testing.T) server.SentLog { return openTest(t, 0).SentLog() })
}
