package wire

import "strings"

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
