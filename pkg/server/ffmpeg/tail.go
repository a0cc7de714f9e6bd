package ffmpeg

import (
	"bytes"
	"regexp"
	"strings"
)

// tailSize bounds what is kept of a program's stderr.
const tailSize = 4 << 10

// tail is an io.Writer that keeps only the last tailSize bytes written to it.
type tail struct {
	buf       []byte
	truncated bool
}

func (t *tail) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= tailSize {
		t.buf = append(t.buf[:0], p[len(p)-tailSize:]...)
		t.truncated = true
		return n, nil
	}
	if over := len(t.buf) + len(p) - tailSize; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.truncated = true
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tail) Bytes() []byte  { return t.buf }
func (t *tail) String() string { return string(t.buf) }

// ctxPrefix matches the "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5556c4da6740] " that libav prefixes
// its messages with.
var ctxPrefix = regexp.MustCompile(`^\[[^\]]* @ 0x[0-9a-f]+\] *`)

// streamPrefix matches ffmpeg's "Error while decoding stream #0:1: ", which says nothing
// to a user.
var streamPrefix = regexp.MustCompile(`^Error while (de|en)coding stream #[0-9:]+: *`)

// absPath matches an absolute path (or a file: URL) in a message, so that no server path
// reaches a user: a program names the files it failed to open.
var absPath = regexp.MustCompile(`(^|[\s'"(\[=])(?:file:)?/[^\s'"()\[\]:,;]*`)

// plainWords rewrites ffmpeg's terse messages for users.
var plainWords = map[string]string{
	"Empty output": "no audio could be decoded",
}

// maxReason bounds a reason shown to users.
const maxReason = 200

// reason turns a program's stderr into a short one-line reason for users: it drops libav's
// context prefixes and the input's path (a temporary file the user never named), keeps the
// last two distinct messages, and bounds the length.
func reason(stderr string, paths ...string) string {
	var lines []string
	for l := range strings.SplitSeq(stderr, "\n") {
		l = ctxPrefix.ReplaceAllString(strings.TrimSpace(l), "")
		l = strings.TrimSpace(streamPrefix.ReplaceAllString(l, ""))
		if w, ok := plainWords[l]; ok {
			l = w
		}
		for _, p := range paths {
			if p == "" {
				continue
			}
			if rest, ok := strings.CutPrefix(l, p+": "); ok {
				l = rest
			}
			l = strings.ReplaceAll(l, p, "the file")
		}
		l = absPath.ReplaceAllString(l, "${1}a file")
		if l == "" || len(lines) > 0 && lines[len(lines)-1] == l {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) > 2 {
		lines = lines[len(lines)-2:]
	}
	if len(lines) == 2 && lines[0] == lines[1] {
		lines = lines[1:]
	}
	r := strings.Join(lines, "; ")
	if len(r) > maxReason {
		r = strings.ToValidUTF8(r[:maxReason], "") + "…"
	}
	if r == "" {
		r = "unknown error"
	}
	return r
}

// oneLine returns the first non-empty line of s, for diagnostics.
func oneLine(s string) string {
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// maxLine bounds one line of a program's line-by-line output; longer lines are cut.
const maxLine = 1 << 10

// splitLines feeds the complete lines of p to handle, without their newline, and keeps an
// unfinished last line in *line for the next call. Lines are cut at maxLine bytes.
func splitLines(line *[]byte, p []byte, handle func([]byte)) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			*line = append(*line, p[:min(len(p), maxLine-len(*line))]...)
			return
		}
		*line = append(*line, p[:min(i, maxLine-len(*line))]...)
		handle(*line)
		*line = (*line)[:0]
		p = p[i+1:]
	}
}
