package ffmpeg

import "github.com/v2m/v2m/pkg/server"

// metadataArgs are ffmpeg's output options for the MP3's tags, cover and chapters, placed
// after the audio's options in run. For now the MP3 gets what ffmpeg copies by default.
func (c *Converter) metadataArgs(in Info, conv server.Conversion) []string { return nil }
