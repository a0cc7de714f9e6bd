package ffmpeg_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/ffmpeg"
)

// taggedMeta is an ffmetadata file with the tags a music video may carry, and two chapters.
const taggedMeta = `;FFMETADATA1
title=Song Title
artist=The Artist
album=The Album
album_artist=Various Artists
date=2024-05-17
genre=Rock
track=3/12
comment=Recorded live
[CHAPTER]
TIMEBASE=1/1000
START=0
END=1000
title=Intro
[CHAPTER]
TIMEBASE=1/1000
START=1000
END=3000
title=Main part – ünïcode
`

// taggedMP4 is a 3 s H.264/AAC MP4 with global tags and two chapters.
func taggedMP4(t *testing.T) string {
	meta := writeFile(t, "meta.txt", taggedMeta)
	return makeMedia(t, "tagged.mp4",
		"-f", "lavfi", "-i", "testsrc=duration=3:size=160x120:rate=15",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=3:sample_rate=44100",
		"-f", "ffmetadata", "-i", meta,
		"-map", "0", "-map", "1", "-map_metadata", "2", "-map_chapters", "2",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
}

// id3Header returns an MP3's ID3v2 major version and the tag's size with its header.
func id3Header(t *testing.T, b []byte) (version int, size int) {
	t.Helper()
	if len(b) < 10 || string(b[:3]) != "ID3" {
		t.Fatalf("no ID3v2 tag at the start: % x", b[:min(len(b), 10)])
	}
	size = 10 + (int(b[6])<<21 | int(b[7])<<14 | int(b[8])<<7 | int(b[9]))
	if b[5]&0x10 != 0 {
		size += 10
	}
	return int(b[3]), size
}

// id3v23Frames returns the IDs of an ID3v2.3 tag's frames, in order.
func id3v23Frames(t *testing.T, b []byte) []string {
	t.Helper()
	_, size := id3Header(t, b)
	var ids []string
	for i := 10; i+10 <= size && b[i] != 0; {
		n := int(binary.BigEndian.Uint32(b[i+4:]))
		ids = append(ids, string(b[i:i+4]))
		i += 10 + n
	}
	return ids
}

func TestTags(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	src := taggedMP4(t)
	dst := filepath.Join(t.TempDir(), "audio.mp3")
	if err := c.Convert(t.Context(), src, dst, server.Conversion{Title: "upload name"}, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := id3Header(t, b); v != 3 {
		t.Errorf("ID3v2.%d, want ID3v2.3", v)
	}
	if len(b) > 128 && string(b[len(b)-128:len(b)-125]) == "TAG" {
		t.Error("the MP3 ends with an ID3v1 tag")
	}
	frames := id3v23Frames(t, b)
	t.Logf("ID3v2.3 frames: %v", frames)
	if contains(frames, "TXXX") {
		t.Errorf("TXXX frames among %v: want only the tags players read", frames)
	}
	for _, id := range []string{"TIT2", "TPE1", "TALB", "TPE2", "TYER", "TDAT", "TCON", "TRCK", "COMM", "TSSE", "CHAP", "CTOC", "APIC"} {
		if !contains(frames, id) {
			t.Errorf("no %s frame among %v", id, frames)
		}
	}

	// ffprobe reads them back under ffmpeg's names...
	got := ffprobe(t, dst).Format.Tags
	for k, want := range map[string]string{
		"title": "Song Title", "artist": "The Artist", "album": "The Album", "album_artist": "Various Artists",
		"genre": "Rock", "track": "3/12", "comment": "Recorded live",
	} {
		if got[k] != want {
			t.Errorf("tag %s = %q, want %q", k, got[k], want)
		}
	}
	if !strings.HasPrefix(got["encoder"], "Lavf") {
		t.Errorf("encoder tag %q, want ffmpeg's", got["encoder"])
	}
	// ... without the container's own (brands, handler names).
	for _, k := range []string{"major_brand", "compatible_brands", "minor_version"} {
		if v, ok := got[k]; ok {
			t.Errorf("the container's tag %s=%q reached the MP3", k, v)
		}
	}

	// And so does a reader that is not ffmpeg.
	m := mutagen(t, dst)
	t.Logf("mutagen-inspect:\n%s", m)
	for _, want := range []string{"TIT2=Song Title", "TPE1=The Artist", "TALB=The Album", "TPE2=Various Artists",
		"TCON=Rock", "TRCK=3/12", "TDRC=2024-05-17", "COMM==eng=Recorded live", "TSSE=Lavf"} {
		if !strings.Contains(m, "\n"+want) {
			t.Errorf("mutagen does not read %s", want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestTagsFromAudioStreamAndTitleFallback(t *testing.T) {
	// Matroska files often keep tags on the stream; a stream's title names the track, not
	// the work, so the title comes from the upload's name.
	c := newConverter(t, ffmpeg.Config{})
	src := makeMedia(t, "stream-tags.mkv",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=2:sample_rate=44100",
		"-c:a", "libopus", "-metadata:s:a:0", "ARTIST=Stream Artist", "-metadata:s:a:0", "GENRE=Jazz",
		"-metadata:s:a:0", "title=Stereo", "-metadata:s:a:0", "COMMENT=Живой звук", "-metadata", "album=Global Album")
	dst := filepath.Join(t.TempDir(), "audio.mp3")
	if err := c.Convert(t.Context(), src, dst, server.Conversion{Title: "My Upload"}, nil); err != nil {
		t.Fatal(err)
	}
	got := ffprobe(t, dst).Format.Tags
	for k, want := range map[string]string{"title": "My Upload", "artist": "Stream Artist", "genre": "Jazz",
		"album": "Global Album", "comment": "Живой звук"} {
		if got[k] != want {
			t.Errorf("tag %s = %q, want %q (all: %v)", k, got[k], want, got)
		}
	}
	// A comment that is not ASCII is UTF-16 in ID3v2.3.
	if m := mutagen(t, dst); !strings.Contains(m, "\nCOMM==eng=Живой звук\n") || strings.Contains(m, "TXXX") {
		t.Errorf("mutagen reads no COMM frame, or a TXXX frame:\n%s", m)
	}
}

func TestChapters(t *testing.T) {
	c := newConverter(t, ffmpeg.Config{})
	dst := filepath.Join(t.TempDir(), "audio.mp3")
	if err := c.Convert(t.Context(), taggedMP4(t), dst, server.Conversion{}, nil); err != nil {
		t.Fatal(err)
	}
	ch := ffprobe(t, dst).Chapters
	want := []struct{ start, end, title string }{{"0.000000", "1.000000", "Intro"}, {"1.000000", "3.000000", "Main part – ünïcode"}}
	if len(ch) != len(want) {
		t.Fatalf("ffprobe reads %d chapters, want %d: %+v", len(ch), len(want), ch)
	}
	for i, w := range want {
		if ch[i].StartTime != w.start || ch[i].EndTime != w.end || ch[i].Tags["title"] != w.title {
			t.Errorf("chapter %d: %s-%s %q, want %s-%s %q", i, ch[i].StartTime, ch[i].EndTime, ch[i].Tags["title"], w.start, w.end, w.title)
		}
	}
	m := mutagen(t, dst)
	for _, w := range []string{
		"CHAP=ch0 time=0..1000", "    TIT2=Intro",
		"CHAP=ch1 time=1000..3000", "    TIT2=Main part – ünïcode",
		"CTOC=toc flags=3 child_element_ids=ch0,ch1",
	} {
		if !strings.Contains(m, "\n"+w) {
			t.Errorf("mutagen does not read %q in:\n%s", w, m)
		}
	}
}

func TestVBRHeader(t *testing.T) {
	// Two seconds of silence, then noise: a VBR MP3 whose first frames are small, so that a
	// reader without the Xing header, which guesses the duration from the first frame,
	// gets it very wrong (12.2 s instead of 5 s with ffmpeg's -write_xing 0).
	c := newConverter(t, ffmpeg.Config{})
	src := makeMedia(t, "silence-noise.mkv",
		"-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo:d=2", "-f", "lavfi", "-i", "anoisesrc=d=3:r=44100:a=0.3",
		"-filter_complex", "[0][1]concat=n=2:v=0:a=1", "-c:a", "flac")
	dst := filepath.Join(t.TempDir(), "audio.mp3")
	if err := c.Convert(t.Context(), src, dst, server.Conversion{}, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	_, tagSize := id3Header(t, b)
	frame := b[tagSize:]
	if len(frame) < 4 || frame[0] != 0xff || frame[1]&0xe0 != 0xe0 {
		t.Fatalf("no MPEG frame after the ID3 tag: % x", frame[:min(len(frame), 4)])
	}
	i := bytes.Index(frame[:min(len(frame), 64)], []byte("Xing"))
	if i < 0 {
		t.Fatalf("the first frame has no Xing header (a VBR file's): % x", frame[:min(len(frame), 64)])
	}
	x := frame[i+4:]
	flags := binary.BigEndian.Uint32(x)
	if flags&3 != 3 {
		t.Fatalf("Xing flags %#x: want the frame and byte counts", flags)
	}
	nframes, nbytes := binary.BigEndian.Uint32(x[4:]), binary.BigEndian.Uint32(x[8:])
	if want := len(b) - tagSize; int(nbytes) != want {
		t.Errorf("Xing byte count %d, want the audio's %d", nbytes, want)
	}
	lame := x[12:]
	if flags&4 != 0 {
		lame = lame[100:]
	}
	if flags&8 != 0 {
		lame = lame[4:]
	}
	d := lame[21:24]
	delay, padding := int(d[0])<<4|int(d[1])>>4, int(d[1]&0x0f)<<8|int(d[2])
	t.Logf("Xing: %d frames, %d bytes; LAME tag %q, delay %d, padding %d", nframes, nbytes, lame[:9], delay, padding)
	if delay == 0 {
		t.Errorf("LAME tag %q: no encoder delay", lame[:9])
	}

	decoded := decodedDuration(t, dst)
	if want := 5 * time.Second; !within(decoded, want, 30*time.Millisecond) {
		t.Errorf("the MP3 decodes to %v, want %v", decoded, want)
	}
	if fromHeader := time.Duration(float64(int(nframes)*1152-delay-padding) / 44100 * float64(time.Second)); !within(fromHeader, decoded, 30*time.Millisecond) {
		t.Errorf("the Xing and LAME headers give %v, the audio lasts %v", fromHeader, decoded)
	}
	probedDur, err := strconv.ParseFloat(ffprobe(t, dst).Format.Duration, 64)
	if err != nil {
		t.Fatal(err)
	}
	got := time.Duration(probedDur * float64(time.Second))
	t.Logf("ffprobe: %v; decoded: %v", got, decoded)
	if !within(got, decoded, 50*time.Millisecond) {
		t.Errorf("ffprobe's duration %v, the audio lasts %v", got, decoded)
	}
}

// decodedDuration decodes an audio file to 44.1 kHz mono PCM and returns how long it lasts.
func decodedDuration(t *testing.T, path string) time.Duration {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, "ffmpeg"), "-nostdin", "-v", "error", "-i", path, "-map", "0:a:0",
		"-ac", "1", "-ar", "44100", "-f", "s16le", "-")
	pcm, err := cmd.Output()
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return time.Duration(float64(len(pcm)/2) / 44100 * float64(time.Second))
}
