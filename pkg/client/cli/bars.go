package cli

import (
	"io"
	"os"
	"time"

	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Progress bars, drawn with mpb, which draws several bars at once (one per file of upload and
// convert) as well as one; sizes and rates are in binary units, as the step lines' are.

// barRefresh is how often bars are drawn again.
const barRefresh = 120 * time.Millisecond

// bytesBar returns a progress callback drawing a bytes bar, or nil, and the function that
// ends the bar (and clears it). Sizes and rates are in binary units, as the step lines are.
func (p progress) bytesBar(desc string) (func(done, total int64), func()) {
	if p.line != nil {
		return p.line.transfer(desc), func() {}
	}
	if !p.bars {
		return nil, func() {}
	}
	pr := newBars(p.w)
	var bar *mpb.Bar
	update := func(done, total int64) {
		if bar == nil {
			m := newMeter(done)
			bar = pr.AddBar(0, mpb.BarRemoveOnComplete(), mpb.BarWidth(barWidth),
				mpb.PrependDecorators(decor.Name(desc, decor.WC{W: len(desc) + 1, C: decor.DindentRight})),
				mpb.AppendDecorators(decor.Any(func(s decor.Statistics) string { return " " + m.text(s.Current, s.Total) })))
		}
		if total > 0 {
			bar.SetTotal(total, false)
		}
		bar.SetCurrent(done)
	}
	finish := func() {
		if bar != nil {
			bar.SetTotal(-1, true) // complete: the bar is cleared
		}
		pr.Wait()
	}
	return update, finish
}

// barWidth is the width of a bar's filler.
const barWidth = 24

// newBars returns a container of bars drawn on w: w itself when it is the terminal, or a
// writer in front of term, the terminal, whose size then gives the bars' room.
func newBars(w io.Writer, term ...io.Writer) *mpb.Progress {
	cw := cupwriter.New(w, true)
	for _, t := range append(term, w) {
		if f, ok := t.(*os.File); ok {
			cw.SetTermFd(int(f.Fd()))
			break
		}
	}
	return mpb.New(mpb.WithConsoleWriter(cw), mpb.WithAutoRefresh(), mpb.WithRefreshRate(barRefresh))
}

// meter shows a transfer's bytes and its rate over this run: what was there when it started
// (the parts of a resumed upload that the server has, the part file of a resumed download)
// does not count towards the rate.
type meter struct {
	base  int64
	start time.Time
	now   func() time.Time
}

func newMeter(base int64) *meter { return &meter{base: base, start: time.Now(), now: time.Now} }

// rate is the bytes per second sent in this run, "" until there is something to measure.
func (m *meter) rate(current int64) string {
	elapsed := m.now().Sub(m.start)
	if elapsed < 200*time.Millisecond || current <= m.base {
		return ""
	}
	return humanBytes(int64(float64(current-m.base)/elapsed.Seconds())) + "/s"
}

// text is "1.0 MiB / 4.2 MiB, 512.0 KiB/s".
func (m *meter) text(current, total int64) string {
	s := humanBytes(current)
	if total > 0 {
		s += " / " + humanBytes(total)
	}
	if r := m.rate(current); r != "" {
		s += ", " + r
	}
	return s
}
