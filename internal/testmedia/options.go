package testmedia

import (
	"strconv"
	"time"
)

// Samples for the per-job options and for broken timestamps. Each has Args; AudioDuration
// is the audio's nominal length (an AAC encoder adds about 23 ms of priming that Matroska
// keeps), so compare an MP3 with the decoded audio rather than with it.

// tiny are the video input and encoder of the samples below: 4 s at 160x120.
var (
	tinyVideo = []string{"-f", "lavfi", "-i", "testsrc=duration=4:size=160x120:rate=15"}
	tinyH264  = []string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"}
)

func join(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// sine is a lavfi input of a tone, with filters after it (e.g. ",volume=-20dB").
func sine(freq int, secs string, filters string) []string {
	return []string{"-f", "lavfi", "-i", "sine=frequency=" + strconv.Itoa(freq) + ":duration=" + secs + ":sample_rate=44100" + filters}
}

// TwoTracks is a Matroska video with two audio tracks: 0 is English, a 440 Hz tone of 3 s;
// 1 is French, an 880 Hz tone of 2 s, and the one marked default.
var TwoTracks = Sample{Name: "two-tracks", Container: "mkv", Args: join(tinyVideo, sine(440, "3", ""), sine(880, "2", ""),
	[]string{"-map", "0:v", "-map", "1:a", "-map", "2:a"}, tinyH264, []string{"-c:a", "aac",
		"-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra",
		"-disposition:a:0", "0", "-disposition:a:1", "default"}),
	AudioDuration: 2 * time.Second}

// Stereo is an MP4 whose audio has two channels: 440 Hz left, 660 Hz right, 4 s.
var Stereo = Sample{Name: "stereo", Container: "mp4", Args: join(tinyVideo,
	[]string{"-f", "lavfi", "-i", "sine=frequency=440:duration=4:sample_rate=44100", "-f", "lavfi", "-i", "sine=frequency=660:duration=4:sample_rate=44100",
		"-filter_complex", "[1:a][2:a]join=inputs=2:channel_layout=stereo[a]", "-map", "0:v", "-map", "[a]"}, tinyH264,
	[]string{"-c:a", "aac"}), AudioDuration: 4 * time.Second}

// Quiet and Loud are 4 s of audio far below and above -16 LUFS: a tone at about -47 LUFS,
// and a tone amplified into clipping (almost a square wave) at about -4 LUFS.
var (
	Quiet = Sample{Name: "quiet", Container: "m4a", Args: join(sine(440, "4", ",volume=-25dB"), []string{"-c:a", "aac"}),
		AudioDuration: 4 * time.Second}
	Loud = Sample{Name: "loud", Container: "m4a", Args: join(sine(440, "4", ",volume=18dB"), []string{"-c:a", "aac"}),
		AudioDuration: 4 * time.Second}
)

// BrokenTimestamps are videos whose audio timestamps do not follow its samples. The old
// converter made MP3s of the right length from them but judged them by what the container
// claimed, and failed them.
var BrokenTimestamps = []Sample{
	// Two segments joined with a jump of 3 s in the audio's timestamps after 2 s: the
	// container claims 7 s of audio for 4.
	{Name: "ts-jump", Container: "mkv", Args: join(tinyVideo, sine(440, "4", `,asetpts=PTS+gte(T\,2)*3/TB`), tinyH264,
		[]string{"-c:a", "aac"}), AudioDuration: 4 * time.Second},
	// The audio starts 2.5 s into the file (a large first DTS, as in the field): the
	// container claims it ends at 5.5 s.
	{Name: "ts-audio-offset", Container: "mkv", Args: join(tinyVideo, []string{"-itsoffset", "2.5"}, sine(440, "3", ""), tinyH264,
		[]string{"-c:a", "aac"}), AudioDuration: 3 * time.Second},
	// Every timestamp is 10 s late.
	{Name: "ts-output-offset", Container: "mkv", Args: join(tinyVideo, sine(440, "3", ""), tinyH264,
		[]string{"-c:a", "aac", "-output_ts_offset", "10"}), AudioDuration: 3 * time.Second},
	// The audio's timestamps go back by 0.5 s after 2 s: non-monotonic DTS.
	{Name: "ts-backwards", Container: "mkv", Args: join(tinyVideo, sine(440, "4", `,asetpts=PTS-gte(T\,2)*0.5/TB`), tinyH264,
		[]string{"-c:a", "aac"}), AudioDuration: 4 * time.Second},
	// Written to a pipe: no duration in the header, for the file or its streams.
	{Name: "ts-no-duration", Container: "mkv", Args: join(tinyVideo, sine(440, "3", ""), tinyH264,
		[]string{"-c:a", "aac", "-f", "matroska"}), Pipe: true, AudioDuration: 3 * time.Second},
	// An MPEG-TS whose audio jumps 3 s ahead after 2 s, as a badly cut broadcast does.
	{Name: "ts-jump", Container: "ts", Args: join(tinyVideo, sine(440, "4", `,asetpts=PTS+gte(T\,2)*3/TB`), tinyH264,
		[]string{"-c:a", "aac", "-f", "mpegts"}), AudioDuration: 4 * time.Second},
}

// Silent is 3 s of digital silence, which no loudness target can raise.
var Silent = Sample{Name: "silent", Container: "m4a", Args: []string{"-f", "lavfi", "-i", "anullsrc=sample_rate=44100:channel_layout=mono",
	"-t", "3", "-c:a", "aac"}, AudioDuration: 3 * time.Second}

// ToneChange is 70 s of audio: a 440 Hz tone for 35 s, then 880 Hz, so that a trim far into
// a file can be checked for where it starts.
var ToneChange = Sample{Name: "tone-change", Container: "m4a", Args: []string{"-f", "lavfi", "-i",
	"sine=frequency=440:duration=35:sample_rate=44100[a];sine=frequency=880:duration=35:sample_rate=44100[b];[a][b]concat=v=0:a=1",
	"-c:a", "aac", "-b:a", "32k"}, AudioDuration: 70 * time.Second}

// Noise is 4 s of pink noise at about -16 LUFS whose true peak is near -2.5 dBTP: no gain
// can bring it to -9 LUFS without limiting.
var Noise = Sample{Name: "noise", Container: "m4a", Args: []string{"-f", "lavfi", "-i", "anoisesrc=duration=4:color=pink:amplitude=0.9:seed=1",
	"-c:a", "aac"}, AudioDuration: 4 * time.Second}

// Chapters is a 6 s MP4 with three chapters: "Opening" 0-2 s, "Middle" 2-4.5 s and "End"
// 4.5-6 s.
var Chapters = Sample{Name: "chapters", Container: "mp4", Metadata: `;FFMETADATA1
title=Three Parts
[CHAPTER]
TIMEBASE=1/1000
START=0
END=2000
title=Opening
[CHAPTER]
TIMEBASE=1/1000
START=2000
END=4500
title=Middle
[CHAPTER]
TIMEBASE=1/1000
START=4500
END=6000
title=End
`, Args: join([]string{"-f", "lavfi", "-i", "testsrc=duration=6:size=160x120:rate=15"}, sine(440, "6", ""),
	[]string{"-f", "ffmetadata", "-i", "{metadata}", "-map", "0:v", "-map", "1:a", "-map_metadata", "2", "-map_chapters", "2"},
	tinyH264, []string{"-c:a", "aac"}), AudioDuration: 6 * time.Second}
