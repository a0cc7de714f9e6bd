package servertest

import (
	"slices"
	"testing"
	"time"

	"github.com/v2m/v2m/pkg/server"
)

// NewUploadStore returns a fresh, empty UploadStore.
type NewUploadStore func(t *testing.T) server.UploadStore

// TestUploadStore checks an UploadStore against the contract of server.UploadStore.
func TestUploadStore(t *testing.T, newStore NewUploadStore) {
	base := NewClock().Now()
	upload := func(age time.Duration) *server.Upload {
		return &server.Upload{ID: server.NewID(), Owner: "ann@example.com", Filename: "talk.mp4", Size: 300 << 10,
			PartSize: 128 << 10, SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", CreatedAt: base.Add(-age)}
	}
	t.Run("CreateAndGet", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		for _, u := range []*server.Upload{upload(0), {ID: server.NewID(), Owner: "bob@example.com", Filename: "empty.mp4", CreatedAt: base}} {
			if err := s.CreateUpload(ctx, u); err != nil {
				t.Fatalf("CreateUpload: %v", err)
			}
			got, err := s.Upload(ctx, u.ID)
			if err != nil {
				t.Fatalf("Upload: %v", err)
			}
			sameUpload(t, "Upload", got, u)
		}
	})
	t.Run("OptionsRoundTrip", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		var all []*server.Upload
		for i, o := range SampleOptions() {
			u := upload(time.Duration(len(SampleOptions())-i) * time.Hour) // oldest first
			u.Options = o
			if err := s.CreateUpload(ctx, u); err != nil {
				t.Fatalf("CreateUpload with options %s: %v", FormatOptions(o), err)
			}
			got, err := s.Upload(ctx, u.ID)
			if err != nil {
				t.Fatalf("Upload: %v", err)
			}
			sameUpload(t, "Upload", got, u)
			all = append(all, u)
		}
		stale, err := s.StaleUploads(ctx, base, len(all))
		if err != nil || len(stale) != len(all) {
			t.Fatalf("StaleUploads = %d uploads, %v; want %d", len(stale), err, len(all))
		}
		for i := range all {
			sameUpload(t, "stale upload", stale[i], all[i])
		}
	})
	t.Run("CreateDuplicateID", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		u := upload(0)
		if err := s.CreateUpload(ctx, u); err != nil {
			t.Fatal(err)
		}
		dup := *u
		dup.Owner = "bob@example.com"
		wantCode(t, "CreateUpload of an existing id", s.CreateUpload(ctx, &dup), server.ECONFLICT)
		if got, err := s.Upload(ctx, u.ID); err != nil || got.Owner != u.Owner {
			t.Fatalf("the first upload changed: %+v, %v", got, err)
		}
	})
	t.Run("Missing", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		_, err := s.Upload(ctx, server.NewID())
		wantCode(t, "Upload of a missing id", err, server.ENOTFOUND)
	})
	t.Run("Delete", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		u, other := upload(0), upload(0)
		for _, x := range []*server.Upload{u, other} {
			if err := s.CreateUpload(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		wantCode(t, "DeleteUpload", s.DeleteUpload(ctx, u.ID), "")
		_, err := s.Upload(ctx, u.ID)
		wantCode(t, "Upload after DeleteUpload", err, server.ENOTFOUND)
		wantCode(t, "DeleteUpload of a deleted upload", s.DeleteUpload(ctx, u.ID), "")
		wantCode(t, "DeleteUpload of a missing upload", s.DeleteUpload(ctx, server.NewID()), "")
		if _, err := s.Upload(ctx, other.ID); err != nil {
			t.Fatalf("another upload was deleted: %v", err)
		}
	})
	t.Run("StaleUploadsOldestFirst", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		old, oldest, older := upload(48*time.Hour), upload(96*time.Hour), upload(72*time.Hour)
		atLimit, fresh := upload(24*time.Hour), upload(time.Minute)
		for _, u := range []*server.Upload{old, oldest, older, atLimit, fresh} {
			if err := s.CreateUpload(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		before := base.Add(-24 * time.Hour) // atLimit, created exactly then, is not stale
		got, err := s.StaleUploads(ctx, before, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := uploadIDs(got), []string{oldest.ID, older.ID, old.ID}; !slices.Equal(got, want) {
			t.Errorf("StaleUploads = %v, want %v", got, want)
		}
		got, err = s.StaleUploads(ctx, before, 2)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := uploadIDs(got), []string{oldest.ID, older.ID}; !slices.Equal(got, want) {
			t.Errorf("StaleUploads limit 2 = %v, want %v", got, want)
		}
		if got, err := s.StaleUploads(ctx, base.Add(-time.Hour*1000), 10); err != nil || len(got) != 0 {
			t.Errorf("StaleUploads before all = %v, %v; want none", uploadIDs(got), err)
		}
	})
	t.Run("OpenUploadsPerOwner", func(t *testing.T) {
		ctx, s := t.Context(), newStore(t)
		if n, b, err := s.OpenUploads(ctx, "ann@example.com"); err != nil || n != 0 || b != 0 {
			t.Fatalf("OpenUploads with none = %d, %d, %v; want 0, 0", n, b, err)
		}
		a1, a2 := upload(time.Hour), upload(time.Minute)
		a2.Size = 5 << 30
		other := upload(0)
		other.Owner = "bob@example.com"
		for _, u := range []*server.Upload{a1, a2, other} {
			if err := s.CreateUpload(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		if n, b, err := s.OpenUploads(ctx, "ann@example.com"); err != nil || n != 2 || b != a1.Size+a2.Size {
			t.Fatalf("OpenUploads = %d, %d, %v; want 2, %d", n, b, err, a1.Size+a2.Size)
		}
		if err := s.DeleteUpload(ctx, a1.ID); err != nil {
			t.Fatal(err)
		}
		if n, b, err := s.OpenUploads(ctx, "ann@example.com"); err != nil || n != 1 || b != a2.Size {
			t.Fatalf("OpenUploads after a delete = %d, %d, %v; want 1, %d", n, b, err, a2.Size)
		}
	})
}

func sameUpload(t *testing.T, what string, got, want *server.Upload) {
	t.Helper()
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("%s: CreatedAt %v, want %v", what, got.CreatedAt, want.CreatedAt)
	}
	if !got.Options.Equal(want.Options) {
		t.Fatalf("%s: options %s\nwant %s", what, FormatOptions(got.Options), FormatOptions(want.Options))
	}
	g := *got
	g.CreatedAt, g.Options = want.CreatedAt, want.Options
	if g != *want {
		t.Fatalf("%s = %+v, want %+v", what, got, want)
	}
}

func uploadIDs(us []*server.Upload) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}
