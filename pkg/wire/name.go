package wire

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MP3Name is the file name of a video's MP3: the video's base name with its extension
// replaced by ".mp3", or with ".mp3" added when it has none. It is the name the server gives
// in Content-Disposition and mails, and the name the client saves to by default; the result
// is always a plain file name, never a path.
//
//   - Only the last extension goes: "a.b.mp4" gives "a.b.mp3".
//   - Any extension goes, whatever its case, and the result always ends in lower-case
//     ".mp3": "x.MP4" gives "x.mp3".
//   - Leading dots are part of the name, not an extension (as in Unix dot files and
//     Python's os.path.splitext): ".hidden" gives ".hidden.mp3".
//   - A trailing dot is an empty extension: "trailingdot." gives "trailingdot.mp3".
//   - Directories are dropped, with / or \ as the separator, so that a name from elsewhere
//     cannot point outside the directory it is saved in: "a/b\\c.mp4" gives "c.mp3".
//   - A name with nothing left ("", ".", "..", "dir/") gives "audio.mp3".
//   - Everything else, Unicode included, is kept byte for byte.
func MP3Name(filename string) string {
	name := filename
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	if name == "" || name == "." || name == ".." {
		return "audio.mp3"
	}
	stem := strings.TrimLeft(name, ".")
	if i := strings.LastIndexByte(stem, '.'); i >= 0 {
		name = name[:len(name)-len(stem)+i]
	}
	return name + ".mp3"
}

// maxTitleBytes bounds the title part of a TrackName.
const maxTitleBytes = 120

// TrackName is the file name of MP3 n (0-based) of a job split by chapters: "01 - Intro.mp3".
// Characters that some file systems refuse (/ \ : * ? " < > |, control characters) become
// "_", spaces and dots at either end go (Windows drops them), and a long title is cut to at
// most 120 bytes on a character boundary. An empty title gives "01 - Chapter 1.mp3".
func TrackName(n int, title string) string {
	var b strings.Builder
	for _, r := range title {
		switch {
		case r < 0x20 || r == 0x7f || strings.ContainsRune(`/\:*?"<>|`, r):
			r = '_'
		case r == utf8.RuneError:
			continue
		}
		if b.Len()+utf8.RuneLen(r) > maxTitleBytes {
			break
		}
		b.WriteRune(r)
	}
	t := strings.Trim(b.String(), " .")
	if t == "" {
		t = fmt.Sprintf("Chapter %d", n+1)
	}
	return fmt.Sprintf("%02d - %s.mp3", n+1, t)
}

// AlbumName is the name of the directory that the MP3s of a split job of the video filename
// are saved in: the name MP3Name gives, without ".mp3".
func AlbumName(filename string) string { return strings.TrimSuffix(MP3Name(filename), ".mp3") }
