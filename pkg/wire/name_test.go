package wire_test

import (
	"testing"

	"github.com/v2m/v2m/pkg/wire"
)

func TestMP3Name(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"talk.mp4", "talk.mp3"},
		{"a.b.mp4", "a.b.mp3"},
		{"noext", "noext.mp3"},
		{"trailingdot.", "trailingdot.mp3"},
		{"x.MP4", "x.mp3"},
		{"x.mp3", "x.mp3"},
		{"X.Mp3", "X.mp3"},
		{".hidden", ".hidden.mp3"},
		{".hidden.mkv", ".hidden.mp3"},
		{"..mp4", "..mp4.mp3"},
		{"...", "....mp3"},
		{"vidéo.mp4", "vidéo.mp3"},
		{"日本語の動画.mkv", "日本語の動画.mp3"},
		{"😀.webm", "😀.mp3"},
		{"with space.mov", "with space.mp3"},
		{"dir/talk.mp4", "talk.mp3"},
		{`C:\Users\ann\talk.mp4`, "talk.mp3"},
		{"../../etc/passwd", "passwd.mp3"},
		{"dir/", "audio.mp3"},
		{"", "audio.mp3"},
		{".", "audio.mp3"},
		{"..", "audio.mp3"},
		{"/", "audio.mp3"},
	} {
		if got := wire.MP3Name(tc.in); got != tc.want {
			t.Errorf("MP3Name(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
