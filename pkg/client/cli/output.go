package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/v2m/v2m/pkg/client"
	"github.com/v2m/v2m/pkg/wire"
)

// Where download, convert and upload -o save MP3s: a file, a directory, or stdout, never
// replacing a file without --clobber.

// output is where a command saves what a job made, as -o and --clobber say.
type output struct {
	// Path is -o: "" for the job's own name in the working directory, "-" for stdout, a
	// directory (one that exists, or a path ending in a separator) to save the MP3 into, or
	// the MP3's path; for a job split by chapters, the directory of its MP3s.
	Path string
	// Clobber allows replacing files that exist.
	Clobber bool
	// Stdout is where "-" writes.
	Stdout io.Writer
}

// stdout reports whether the output goes to stdout.
func (o output) stdout() bool { return o.Path == "-" }

// file returns the path of one MP3 whose own name is name (a base name).
func (o output) file(name string) string {
	switch {
	case o.Path == "":
		return name
	case isDir(o.Path):
		return filepath.Join(o.Path, name)
	}
	return o.Path
}

// isDir reports whether path names a directory: it ends in a separator, or is one.
func isDir(path string) bool {
	if strings.HasSuffix(path, "/") || strings.HasSuffix(path, string(filepath.Separator)) {
		return true
	}
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// checkClobber refuses, as a usage error, to replace the file at path without --clobber.
func checkClobber(path string, clobber bool) error {
	if clobber {
		return nil
	}
	if _, err := os.Lstat(path); err == nil {
		return usageError("%s exists: pass --clobber to overwrite it", path)
	}
	return nil
}

// checkStdout refuses -o - where it cannot work: with --json, which writes on stdout too, or
// onto a terminal.
func checkStdout(s *iostreams, out string, json bool) error {
	switch {
	case out != "-":
		return nil
	case json:
		return usageError("-o - and --json both write to stdout: choose one")
	case s.stdoutTTY:
		return usageError("stdout is a terminal: redirect it, or save the MP3 with -o FILE")
	}
	return nil
}

func addOutputFlags(cmd *cobra.Command, o *output, usage string) {
	cmd.Flags().StringVarP(&o.Path, "output", "o", "", usage)
	cmd.Flags().BoolVar(&o.Clobber, "clobber", false, "overwrite files that exist")
}

// downloadTo saves file fid to path, or to stdout when path is "-" (w), and returns its size.
// Without clobber an existing file is not replaced (a usage error naming --clobber).
func downloadTo(ctx context.Context, p progress, c *client.Client, fid, path string, clobber bool, w io.Writer) (int64, error) {
	update, finish := p.bytesBar("downloading")
	if path == "-" {
		n, err := c.DownloadStream(ctx, fid, w, update)
		finish()
		return n, err
	}
	// The directory -o names is created when missing, and removed again when nothing comes.
	dir := filepath.Dir(path)
	created, err := makeDir(dir)
	if err != nil {
		finish()
		return 0, err
	}
	p.say("downloading to %s", path)
	err = c.DownloadFile(ctx, fid, path, client.DownloadOptions{Progress: update, NoClobber: !clobber})
	finish()
	if err != nil && created {
		_ = os.Remove(dir) // only when empty: a part file to resume stays
	}
	if fi, perr := os.Stat(path + ".part"); err != nil && perr == nil {
		return 0, &stoppedError{err: err, hint: fmt.Sprintf("%s of it are saved: run `v2m download %s -o %s` to resume the download",
			humanBytes(fi.Size()), shellQuote(fid), shellQuote(path))}
	}
	if errors.Is(err, fs.ErrExist) {
		return 0, usageError("%s exists: pass --clobber to overwrite it", path)
	}
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("saved %s: %w", path, err)
	}
	p.say("saved %s (%s)", path, humanBytes(fi.Size()))
	return fi.Size(), nil
}

// makeDir creates dir when it is missing, and reports whether it did, so that a failure can
// remove it again.
func makeDir(dir string) (bool, error) {
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("create %s: %w", dir, err)
	}
	return true, nil
}

// saveJob downloads what done job j made: its MP3 as out says, or, for a job split by
// chapters, each of its MP3s into the directory out.Path (default: the job's name,
// wire.AlbumName; created when missing), named by wire.TrackName, or the zip of them to
// stdout with -o -. Nothing is replaced without out.Clobber, and a failure removes what it
// saved (and the directory it created). It returns what it saved.
func saveJob(ctx context.Context, p progress, c *client.Client, j *client.Job, out output) (downloadJSON, error) {
	if len(j.Files) == 0 || out.stdout() {
		path := out.Path
		if !out.stdout() {
			path = out.file(mp3Name(j.Filename, j.MP3FID))
			if err := checkClobber(path, out.Clobber); err != nil {
				return downloadJSON{}, err
			}
		}
		size, err := downloadTo(ctx, p, c, j.MP3FID, path, out.Clobber, out.Stdout)
		return downloadJSON{FID: j.MP3FID, Path: path, Size: size}, err
	}
	dir := out.Path
	if dir == "" {
		dir = strings.TrimSuffix(mp3Name(j.Filename, j.ID), ".mp3")
	}
	paths := make([]string, len(j.Files))
	for i, f := range j.Files {
		paths[i] = filepath.Join(dir, wire.TrackName(i, f.Title))
		if err := checkClobber(paths[i], out.Clobber); err != nil {
			return downloadJSON{}, err
		}
	}
	created, err := makeDir(dir)
	if err != nil {
		return downloadJSON{}, err
	}
	res := downloadJSON{FID: j.MP3FID, Path: strings.TrimRight(dir, `/\`)}
	if res.Path == "" {
		res.Path = dir
	}
	for i, f := range j.Files {
		size, err := downloadTo(ctx, p, c, f.FID, paths[i], out.Clobber, nil)
		if err != nil {
			for _, saved := range res.Files {
				_ = os.Remove(saved.Path)
			}
			if created {
				_ = os.Remove(dir) // only when empty: a part file to resume stays
			}
			return downloadJSON{}, err
		}
		res.Size += size
		res.Files = append(res.Files, downloadJSON{FID: f.FID, Path: paths[i], Size: size})
	}
	return res, nil
}
