package ffmpeg

import (
	"bytes"
	"testing"

	"github.com/v2m/v2m/pkg/server"
)

func frame(id string, body []byte) []byte {
	n := len(body)
	return append([]byte{id[0], id[1], id[2], id[3], byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 0, 0}, body...)
}

func TestReplaceComment(t *testing.T) {
	title := frame("TIT2", []byte("\x00Song"))
	other := frame("TXXX", []byte("\x00source\x00x"))
	pad := make([]byte, 16)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for name, tc := range map[string]struct {
		tag, want []byte
		ok        bool
	}{
		"latin1": {
			tag:  cat(title, frame("TXXX", []byte("\x00comment\x00hi")), other, pad),
			want: cat(title, frame("COMM", []byte("\x00eng\x00hi")), other, pad, make([]byte, 4)),
			ok:   true,
		},
		"utf16": {
			tag: cat(frame("TXXX", []byte("\x01\xff\xfec\x00o\x00m\x00m\x00e\x00n\x00t\x00\x00\x00\xff\xfeh\x00i\x00")), pad),
			want: cat(frame("COMM", []byte("\x01eng\xff\xfe\x00\x00\xff\xfeh\x00i\x00")), pad,
				make([]byte, 11)),
			ok: true,
		},
		"none":      {tag: cat(title, other, pad)},
		"oversized": {tag: cat([]byte("TIT2\x00\x00\xff\xff\x00\x00"), pad)},
		"empty":     {tag: nil},
	} {
		t.Run(name, func(t *testing.T) {
			got, ok := replaceComment(tc.tag)
			if ok != tc.ok || !bytes.Equal(got, tc.want) {
				t.Errorf("replaceComment = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
			if ok && len(got) != len(tc.tag) {
				t.Errorf("the tag went from %d to %d bytes", len(tc.tag), len(got))
			}
		})
	}
}

func TestTagArgs(t *testing.T) {
	m := sourceMeta{
		Global: lowerKeys(map[string]string{"TITLE": " Song ", "ARTIST": "", "major_brand": "isom"}),
		Audio:  lowerKeys(map[string]string{"ARTIST": "A\x00B", "PART_NUMBER": "2", "title": "Stereo"}),
	}
	got := tagArgs(m, server.Conversion{Title: "file"})
	want := []string{"-id3v2_version", "3", "-write_id3v1", "0", "-write_xing", "1", "-map_metadata:g", "-1",
		"-metadata", "title=Song", "-metadata", "artist=AB", "-metadata", "track=2"}
	if !equal(got, want) {
		t.Errorf("tagArgs = %q\nwant %q", got, want)
	}
	if got := tagArgs(sourceMeta{Chapters: make([]chapter, 2)}, server.Conversion{Title: "up"}); !equal(got[len(got)-4:], []string{"-metadata", "title=up", "-map_chapters", "0"}) {
		t.Errorf("tagArgs with chapters = %q", got)
	}
	long := cleanTag(string(bytes.Repeat([]byte("é"), maxTagLen)))
	if len(long) > maxTagLen || !bytes.Equal([]byte(long), bytes.Repeat([]byte("é"), maxTagLen/2)) {
		t.Errorf("a long tag is cut to %d bytes", len(long))
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
