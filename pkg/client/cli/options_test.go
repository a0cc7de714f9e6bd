package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestMP3OptionFlags: upload and convert turn the option flags into the job options they send,
// as the JSON the API gets; none gives none (the server's defaults).
func TestMP3OptionFlags(t *testing.T) {
	for _, tc := range []struct {
		name, args, want string
	}{
		{"none", "", `null`},
		{"quality", "--quality 0", `{"quality":0}`},
		{"quality at its default is still sent", "--quality=2", `{"quality":2}`},
		{"bitrate", "--bitrate 192k", `{"bitrate":"192k"}`},
		{"span", "--start 1m30s --end 00:02:00.500", `{"start":"1m30s","end":"00:02:00.500"}`},
		{"normalize", "--normalize", `{"normalize":true}`},
		{"normalize to a target", "--normalize=-23", `{"normalize":true,"loudness":-23}`},
		{"normalize to a fraction", "--normalize=-14.5", `{"normalize":true,"loudness":-14.5}`},
		{"normalize off", "--normalize=false", `null`},
		{"bare normalize before the file", "--normalize FILE", `{"normalize":true}`},
		{"track 0", "--track 0", `{"track":0}`},
		{"language", "--language eng", `{"language":"eng"}`},
		{"flags", "--mono --no-cover", `{"mono":true,"cover":false}`},
		{"all", "--quality 4 --start 5s --normalize --track 1 --mono", `{"quality":4,"start":"5s","normalize":true,"track":1,"mono":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := strings.Fields(tc.args)
			if !strings.Contains(tc.args, "FILE") {
				args = append(args, "FILE")
			}
			for i, a := range args {
				if a == "FILE" {
					args[i] = "talk.mp4"
				}
			}
			up := wantOK(t, parse(t, testEnv{}, newCmdUpload, append([]string{"upload"}, args...)...))
			if got, _ := json.Marshal(up.Send.Options); string(got) != tc.want {
				t.Errorf("upload %s: options %s, want %s", tc.args, got, tc.want)
			}
			conv := wantOK(t, parse(t, testEnv{}, newCmdConvert, append([]string{"convert"}, args...)...))
			if got, _ := json.Marshal(conv.Send.Options); string(got) != tc.want {
				t.Errorf("convert %s: options %s, want %s", tc.args, got, tc.want)
			}
		})
	}
}

// TestBadMP3OptionFlags: a bad value is a usage error (exit 2) with the server's message,
// naming the flag, before the command runs.
func TestBadMP3OptionFlags(t *testing.T) {
	for _, tc := range []struct{ args, msg string }{
		{"--quality 10", `--quality: option "quality" must be 0 (best) to 9, not 10`},
		{"--quality -1", `option "quality" must be 0 (best) to 9, not -1`},
		{"--bitrate 100k", `--bitrate: option "bitrate" must be one of 32k, 40k`},
		{"--bitrate 192k --quality 2", `"bitrate" and "quality" cannot be combined`},
		{"--start soon", `--start: option "start" must be a time within the audio`},
		{"--start 2m --end 1m", `--end: option "end" (1m0s) must come after "start" (2m0s)`},
		{"--normalize=-40", `--normalize: option "loudness" must be -30 to -5 LUFS, not -40`},
		{"--normalize=loud", `takes no value or a loudness in LUFS, such as --normalize=-23, not "loud"`},
		{"--track 100", `--track: option "track" must be 0 to 99`},
		{"--track 1 --language eng", `"track" and "language" cannot be combined`},
		{"--language english", `--language: option "language" must be a three-letter ISO 639-2 code`},
		{"--quality high", `invalid argument "high" for "--quality"`},
	} {
		t.Run(tc.args, func(t *testing.T) {
			args := append(strings.Fields(tc.args), "talk.mp4")
			wantUsage(t, parse(t, testEnv{}, newCmdUpload, append([]string{"upload"}, args...)...), tc.msg)
			wantUsage(t, parse(t, testEnv{}, newCmdConvert, append([]string{"convert"}, args...)...), tc.msg)
		})
	}
}
