package ffmpeg

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/v2m/v2m/pkg/server"
)

// The MP3 gets ID3v2.3 tags (what most players and car stereos read; ffmpeg's default is
// v2.4), no ID3v1 tag, and a Xing/LAME header, which ffmpeg writes when the output is a
// seekable file: without it, players guess a VBR file's length from its first frame.

// tagKeys are the source's tags that the MP3 keeps, by ffmpeg's generic names (which the
// mp3 muxer turns into TPE1, TALB, TPE2, TYER/TDAT, TCON, TRCK...), each with the other
// names containers use for it. The title is handled apart.
var tagKeys = []struct {
	key     string
	aliases []string
}{
	{"artist", []string{"artist", "author", "lead_performer"}},
	{"album", []string{"album"}},
	{"album_artist", []string{"album_artist", "album artist", "albumartist"}},
	{"date", []string{"date", "date_released", "year", "date_recorded"}},
	{"genre", []string{"genre"}},
	{"track", []string{"track", "part_number", "tracknumber"}},
	{"comment", []string{"comment"}},
}

// maxTagLen bounds one tag's value in bytes: the MP3 is not the place for a novel, and every
// value goes through ffmpeg's command line.
const maxTagLen = 2000

// sourceMeta is what the MP3 takes from its source besides the audio.
type sourceMeta struct {
	// Global and Audio are the container's tags and the first audio stream's, with
	// lower-case keys.
	Global, Audio map[string]string
	// Picture is the index of the first stream that is an attached picture (a cover), and
	// PictureCodec its codec; Picture is -1 when there is none.
	Picture      int
	PictureCodec string
	// Video is the index of the first video stream that is not a picture; -1 without one.
	Video int
	// Duration is the container's duration; 0 when unknown.
	Duration time.Duration
	// Chapters are the source's chapters, in order.
	Chapters []chapter
}

// chapter is one chapter of a source.
type chapter struct {
	Start, End time.Duration
	Title      string
}

// metaOf reads the tags, pictures and chapters of a media file from what ffprobe said of it.
func metaOf(out *probeOutput) sourceMeta {
	m := sourceMeta{Global: lowerKeys(out.Format.Tags), Picture: -1, Video: -1,
		Duration: seconds(out.Format.Duration)}
	for _, ch := range out.Chapters {
		start, _ := signedSeconds([]byte(ch.Start))
		end, _ := signedSeconds([]byte(ch.End))
		m.Chapters = append(m.Chapters, chapter{Start: max(start, 0), End: max(end, 0), Title: cleanTag(lowerKeys(ch.Tags)["title"])})
	}
	for _, s := range out.Streams {
		switch {
		case s.CodecType == "video" && s.Disposition["attached_pic"] == 1:
			if m.Picture < 0 {
				m.Picture, m.PictureCodec = s.Index, s.CodecName
			}
		case s.CodecType == "video":
			if m.Video < 0 {
				m.Video = s.Index
			}
		case s.CodecType == "audio":
			if m.Audio == nil {
				m.Audio = lowerKeys(s.Tags)
				if m.Audio == nil {
					m.Audio = map[string]string{}
				}
			}
		}
	}
	return m
}

// lowerKeys returns tags with lower-case keys; of keys that differ only in case, the first
// in sorted order wins, so the result does not depend on map order.
func lowerKeys(tags map[string]string) map[string]string {
	if tags == nil {
		return nil
	}
	out := make(map[string]string, len(tags))
	for k, v := range tags {
		lk := strings.ToLower(k)
		if old, ok := out[lk]; ok && old <= v {
			continue
		}
		out[lk] = v
	}
	return out
}

// tag returns the first non-blank value among names, from the global tags, then from the
// audio stream's.
func (m sourceMeta) tag(names ...string) string {
	for _, tags := range []map[string]string{m.Global, m.Audio} {
		for _, n := range names {
			if v := cleanTag(tags[n]); v != "" {
				return v
			}
		}
	}
	return ""
}

// cleanTag trims v, drops NUL bytes (which end a string in ID3 and on a command line) and
// bounds its length.
func cleanTag(v string) string {
	v = strings.TrimSpace(strings.ReplaceAll(strings.ToValidUTF8(v, "\uFFFD"), "\x00", ""))
	if len(v) > maxTagLen {
		cut := maxTagLen
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut]
	}
	return v
}

// title is the MP3's title: the source's title tag, else fallback (the uploaded file's name).
// A stream's title usually names the track ("Stereo", "Commentary"), not the work, so only
// the container's counts.
func (m sourceMeta) title(fallback string) string {
	if v := cleanTag(m.Global["title"]); v != "" {
		return v
	}
	return cleanTag(fallback)
}

// tagArgs are the output options that write the MP3's tags and chapters: ID3v2.3 with the
// title and the source's tags that players show, instead of everything the container had
// (ffmpeg's default copies brands, handler names and encoder strings as TXXX frames), and
// the source's chapters as CHAP and CTOC frames. ffmpeg adds TSSE, its own name and version.
func tagArgs(m sourceMeta, conv server.Conversion) []string {
	return partTagArgs(m, conv, nil)
}

// part is one MP3 of a job split by chapters: chapter N (0-based) of Total.
type part struct {
	N, Total int
	Title    string
}

// partTagArgs are tagArgs for one part of a split job, or for the whole when p is nil: a
// part's title is its chapter's (else "Chapter N"), its track number N/Total, its album the
// source's album or else the source's title, and it has no chapters of its own.
func partTagArgs(m sourceMeta, conv server.Conversion, p *part) []string {
	args := []string{"-id3v2_version", "3", "-write_id3v1", "0", "-write_xing", "1", "-map_metadata:g", "-1"}
	title := m.title(conv.Title)
	if p != nil {
		title = cmp.Or(p.Title, fmt.Sprintf("Chapter %d", p.N+1))
	}
	if title != "" {
		args = append(args, "-metadata", "title="+title)
	}
	for _, k := range tagKeys {
		v := m.tag(k.aliases...)
		if p != nil {
			switch k.key {
			case "track":
				v = fmt.Sprintf("%d/%d", p.N+1, p.Total)
			case "album":
				v = cmp.Or(v, m.title(conv.Title))
			}
		}
		if v != "" {
			args = append(args, "-metadata", k.key+"="+v)
		}
	}
	switch {
	case p != nil:
		args = append(args, "-map_chapters", "-1")
	case len(m.Chapters) > 0:
		args = append(args, "-map_chapters", "0")
	}
	return args
}

// removeQuietly removes path, ignoring that it is not there.
func removeQuietly(path string) {
	if path != "" {
		_ = os.Remove(path)
	}
}

// ffmpeg's mp3 muxer (5.1) writes a "comment" tag as TXXX:comment, which players do not
// show as the comment: commentFrame rewrites it as the COMM frame they read. The COMM frame
// is smaller than the TXXX frame it replaces, so the tag keeps its size (the rest becomes
// padding) and the rewrite stays within it.

// commentFrame replaces the ID3v2.3 tag's TXXX:comment frame of the MP3 at path with a COMM
// frame. A file without one, or whose tag it does not understand, is left as it is.
func commentFrame(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 10)
	if _, err := f.ReadAt(head, 0); err != nil {
		return err
	}
	if string(head[:3]) != "ID3" || head[3] != 3 || head[5] != 0 {
		return nil // not ffmpeg's ID3v2.3 tag: no unsynchronisation, extended header or footer
	}
	size := int(head[6])<<21 | int(head[7])<<14 | int(head[8])<<7 | int(head[9])
	tag := make([]byte, size)
	if _, err := f.ReadAt(tag, 10); err != nil {
		return err
	}
	out, ok := replaceComment(tag)
	if !ok {
		return nil
	}
	if _, err := f.WriteAt(out, 10); err != nil {
		return err
	}
	return f.Close()
}

// txxxComment is the start of a TXXX frame's body whose description is "comment", in
// ISO-8859-1 and in UTF-16 with a byte-order mark, as ffmpeg writes them.
var txxxComment = [][]byte{
	append([]byte{0}, "comment\x00"...),
	{1, 0xff, 0xfe, 'c', 0, 'o', 0, 'm', 0, 'm', 0, 'e', 0, 'n', 0, 't', 0, 0, 0},
}

// replaceComment returns the frames of an ID3v2.3 tag (without its header) with the
// TXXX:comment frame turned into a COMM frame, padded with zeros to the same length, and
// whether there was one.
func replaceComment(tag []byte) ([]byte, bool) {
	for i := 0; i+10 <= len(tag) && tag[i] != 0; {
		n := int(tag[i+4])<<24 | int(tag[i+5])<<16 | int(tag[i+6])<<8 | int(tag[i+7])
		if n < 0 || i+10+n > len(tag) {
			return nil, false
		}
		body := tag[i+10 : i+10+n]
		if string(tag[i:i+4]) == "TXXX" {
			for _, prefix := range txxxComment {
				value, ok := bytes.CutPrefix(body, prefix)
				if !ok {
					continue
				}
				// COMM: encoding, language, an empty description, the text.
				comm := []byte{prefix[0], 'e', 'n', 'g'}
				if prefix[0] == 1 {
					comm = append(comm, 0xff, 0xfe, 0, 0)
				} else {
					comm = append(comm, 0)
				}
				comm = append(comm, value...)
				frame := []byte{'C', 'O', 'M', 'M', byte(len(comm) >> 24), byte(len(comm) >> 16), byte(len(comm) >> 8), byte(len(comm)), 0, 0}
				out := make([]byte, 0, len(tag))
				out = append(out, tag[:i]...)
				out = append(out, frame...)
				out = append(out, comm...)
				out = append(out, tag[i+10+n:]...)
				if len(out) > len(tag) {
					return nil, false
				}
				return append(out, make([]byte, len(tag)-len(out))...), true
			}
		}
		i += 10 + n
	}
	return nil, false
}
