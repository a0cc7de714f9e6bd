package ffmpeg

// WithoutFormatAllowList makes c let ffmpeg pick any demuxer, so that a test can show that
// the Landlock layer holds on its own.
func WithoutFormatAllowList(c *Converter) { c.formats = "" }

// SetSegmentFrames sets the frames per segment of c's parallel encodes, so that short test
// media are cut into several segments.
func SetSegmentFrames(c *Converter, n int) { c.segFrames = n }

// EncodeCounts returns how many MP3s c encoded in segments, and how many it encoded
// serially after the parallel encode failed.
func EncodeCounts(c *Converter) (joined, fallbacks int64) { return c.joined.Load(), c.fallbacks.Load() }
