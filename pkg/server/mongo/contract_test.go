package mongo

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

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

// TestFindAndModifyAtomicity pins down the cause behind ferretDBClaims: concurrent
// findAndModify calls that each $inc one document. MongoDB applies each atomically, so none
// is lost, and that is what the job store's compare-and-set relies on in production.
// FerretDB v1 reads, updates in Go and writes back the whole document, so concurrent calls
// overwrite each other's increments; there the test reports how many were lost.
func TestFindAndModifyAtomicity(t *testing.T) {
	db := openTest(t, 0)
	c := db.Database().Collection("atomicity")
	ctx := t.Context()
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "counter"}, {Key: "n", Value: 0}}); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = c.FindOneAndUpdate(context.Background(), bson.D{{Key: "_id", Value: "counter"}},
				bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}).Err()
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("findAndModify: %v", err)
		}
	}
	var doc struct{ N int }
	if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: "counter"}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.N != n && ferretDB(t, db) {
		t.Skipf("FerretDB lost %d of %d concurrent $inc updates: %s", n-doc.N, n, ferretDBClaims)
	}
	if doc.N != n {
		t.Fatalf("counter %d after %d concurrent $inc, want %d: findAndModify is not atomic per document", doc.N, n, n)
	}
}

func TestContractWebhookStore(t *testing.T) {
	servertest.TestWebhookStore(t, func(t *testing.T) server.WebhookStore { return openTest(t, 0).Webhooks() })
}

func TestContractLimitStore(t *testing.T) {
	servertest.TestLimitStore(t, func(t *testing.T) server.LimitStore { return openTest(t, 0).Limits() })
}

func TestContractLease(t *testing.T) {
	servertest.TestLease(t, func(t *testing.T, now func() time.Time) server.Lease {
		db := openTest(t, 0)
		db.now = now
		return db.Lease()
	})
}
