package reduce

import (
	"bytes"
	"errors"
	"math"

	"github.com/at-wat/ebml-go"
)

// The small structured elements (the EBML header, Info, a TrackEntry, a Tag's Targets)
// are read whole into memory and decoded by ebml-go into the few fields the reducer
// needs; their bytes go into the reduced file unchanged.

// Bounds on what is read into memory.
const (
	maxHeaderBytes     = 4 << 10  // the EBML header
	maxInfoBytes       = 1 << 20  // Info
	maxTrackEntryBytes = 16 << 20 // one TrackEntry, CodecPrivate included
	maxTargetsBytes    = 64 << 10 // one Tag's Targets
	maxTracks          = 1024
)

// Track types (Matroska TrackType).
const (
	trackVideo = 1
	trackAudio = 2
)

type mkvEBMLHeader struct {
	EBMLReadVersion    uint64 `ebml:"EBMLReadVersion"`
	EBMLMaxIDLength    uint64 `ebml:"EBMLMaxIDLength"`
	EBMLMaxSizeLength  uint64 `ebml:"EBMLMaxSizeLength"`
	DocType            string `ebml:"EBMLDocType"`
	DocTypeReadVersion uint64 `ebml:"EBMLDocTypeReadVersion"`
}

type mkvInfo struct {
	TimestampScale []uint64  `ebml:"TimecodeScale"`
	Duration       []float64 `ebml:"Duration"`
}

type mkvTrackEntry struct {
	TrackNumber      []uint64 `ebml:"TrackNumber"`
	TrackUID         uint64   `ebml:"TrackUID"`
	TrackType        uint64   `ebml:"TrackType"`
	ContentEncodings []struct {
		ContentEncoding []struct {
			ContentEncryption []struct{} `ebml:"ContentEncryption"`
		} `ebml:"ContentEncoding"`
	} `ebml:"ContentEncodings"`
}

type mkvTargets struct {
	TagTrackUID []uint64 `ebml:"TagTrackUID"`
}

// decodeElement decodes one whole element (header included) into v, a struct with one
// field whose tag names the element.
func decodeElement(b []byte, v any) error {
	opts := []ebml.UnmarshalOption{ebml.WithMaxLeafElementSize(uint64(len(b)))}
	if err := ebml.Unmarshal(bytes.NewReader(b), v, opts...); err != nil && !errors.Is(err, ebml.ErrReadStopped) {
		return unsupported("decode: %v", err)
	}
	return nil
}

// decode reads the element e whole (at most max bytes) and decodes it into v.
func (rd *ebmlReader) decode(e element, max int64, what string, v any) error {
	b, err := rd.readElement(e, max, what)
	if err != nil {
		return err
	}
	return decodeElement(b, v)
}

// readElement reads the element e whole, header included, when it is at most max bytes.
func (rd *ebmlReader) readElement(e element, max int64, what string) ([]byte, error) {
	if e.size == unknownSize || e.size > max {
		return nil, unsupported("%s at %d: size %d not accepted", what, e.off, e.size)
	}
	return rd.readAll(e.off, e.end()-e.off)
}

// docType checks the EBML header's element and returns the DocType: "matroska" or "webm".
func (rd *ebmlReader) docType(e element) (string, error) {
	var v struct {
		H mkvEBMLHeader `ebml:"EBML"`
	}
	if err := rd.decode(e, maxHeaderBytes, "EBML header", &v); err != nil {
		return "", err
	}
	h := v.H
	switch {
	case h.DocType != "matroska" && h.DocType != "webm":
		return "", unsupported("DocType %q", h.DocType)
	case h.EBMLReadVersion > 1, h.DocTypeReadVersion > 4:
		return "", unsupported("EBML read version %d, DocType read version %d", h.EBMLReadVersion, h.DocTypeReadVersion)
	case h.EBMLMaxIDLength > 4, h.EBMLMaxSizeLength > 8:
		return "", unsupported("ID length %d, size length %d", h.EBMLMaxIDLength, h.EBMLMaxSizeLength)
	}
	return h.DocType, nil
}

// timing is what Info says of time: the TimestampScale (ns per tick) and the Duration in
// ticks (0 when Info has none).
type timing struct {
	scale    uint64
	duration float64
}

func (rd *ebmlReader) info(e element) (timing, error) {
	var v struct {
		I mkvInfo `ebml:"Info"`
	}
	if err := rd.decode(e, maxInfoBytes, "Info", &v); err != nil {
		return timing{}, err
	}
	t := timing{scale: 1000000}
	switch i := v.I; {
	case len(i.TimestampScale) > 1, len(i.Duration) > 1:
		return timing{}, unsupported("Info with repeated elements")
	case len(i.TimestampScale) == 1 && (i.TimestampScale[0] == 0 || i.TimestampScale[0] > 1<<40):
		return timing{}, unsupported("TimestampScale %d", i.TimestampScale[0])
	case len(i.Duration) == 1 && (math.IsNaN(i.Duration[0]) || i.Duration[0] < 0 || i.Duration[0] > 1<<62):
		return timing{}, unsupported("Duration %v", i.Duration[0])
	default:
		if len(i.TimestampScale) == 1 {
			t.scale = i.TimestampScale[0]
		}
		if len(i.Duration) == 1 {
			t.duration = i.Duration[0]
		}
	}
	return t, nil
}

// track is one TrackEntry of the source.
type track struct {
	number    uint64
	uid       uint64
	kind      uint64 // TrackType
	encrypted bool
	elem      element
}

func (rd *ebmlReader) trackEntry(e element) (track, error) {
	var v struct {
		T mkvTrackEntry `ebml:"TrackEntry"`
	}
	if err := rd.decode(e, maxTrackEntryBytes, "TrackEntry", &v); err != nil {
		return track{}, err
	}
	t := v.T
	if len(t.TrackNumber) != 1 || t.TrackNumber[0] == 0 || len(t.ContentEncodings) > 1 {
		return track{}, unsupported("TrackEntry at %d: no single TrackNumber or ContentEncodings", e.off)
	}
	tr := track{number: t.TrackNumber[0], uid: t.TrackUID, kind: t.TrackType, elem: e}
	for _, ce := range t.ContentEncodings {
		for _, enc := range ce.ContentEncoding {
			tr.encrypted = tr.encrypted || len(enc.ContentEncryption) > 0
		}
	}
	return tr, nil
}

// targetTracks returns the TagTrackUIDs of the Targets element e.
func (rd *ebmlReader) targetTracks(e element) ([]uint64, error) {
	var v struct {
		T mkvTargets `ebml:"Targets"`
	}
	if err := rd.decode(e, maxTargetsBytes, "Targets", &v); err != nil {
		return nil, err
	}
	return v.T.TagTrackUID, nil
}
