package daemon

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/v2m/v2m/pkg/server/sqlite"
	"github.com/v2m/v2m/pkg/wire"
)

// TestAdminLimits: v2md admin limits shows and sets a user's own limits in a standalone data
// directory; a bad value exits 2 and changes nothing.
func TestAdminLimits(t *testing.T) {
	data := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(data, "v2m.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	show := func(args ...string) wire.Limits {
		t.Helper()
		out, err := run(t, append([]string{"admin", "limits", "ann@example.com", "--data", data}, args...)...)
		if err != nil {
			t.Fatalf("v2md admin limits %v: %v", args, err)
		}
		var l wire.Limits
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("output %q: %v", out, err)
		}
		return l
	}
	if l := show(); l.QuotaBytes != nil || l.MaxActiveJobs != nil || l.MaxDuration != nil || l.MaxOpenUploads != nil {
		t.Fatalf("limits of a user with none: %+v", l)
	}
	l := show("--quota-bytes", "5GiB", "--max-duration", "2h", "--max-open-uploads", "0")
	if l.QuotaBytes == nil || *l.QuotaBytes != 5<<30 || l.MaxDuration == nil || *l.MaxDuration != 7200 || l.MaxOpenUploads == nil || *l.MaxOpenUploads != 0 || l.MaxActiveJobs != nil {
		t.Fatalf("limits after a set: %s", fmtJSON(l))
	}
	_, err = run(t, "admin", "limits", "ann@example.com", "--data", data, "--max-active-jobs", "many")
	if ExitCode(err) != 2 {
		t.Fatalf("a bad value: %v (exit %d), want exit 2", err, ExitCode(err))
	}
	l = show("--quota-bytes", "default")
	if l.QuotaBytes != nil || l.MaxDuration == nil || *l.MaxDuration != 7200 {
		t.Fatalf("limits after a reset: %s", fmtJSON(l))
	}
}

func fmtJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
