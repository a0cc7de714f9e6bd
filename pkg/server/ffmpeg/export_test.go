package ffmpeg

// WithoutFormatAllowList makes c let ffmpeg pick any demuxer, so that a test can show that
// the Landlock layer holds on its own.
func WithoutFormatAllowList(c *Converter) { c.formats = "" }
