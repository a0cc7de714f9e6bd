package ffmpeg

import (
	"runtime"
	"testing"
)

func TestCPUPool(t *testing.T) {
	n := runtime.GOMAXPROCS(0)
	var p cpuPool
	p.hold()
	if got := p.take(100); got != n-1 {
		t.Errorf("one job held: took %d more, want %d", got, n-1)
	}
	p.hold() // a second job: none left over, and it still runs
	if got := p.take(1); got != 0 {
		t.Errorf("all held: took %d", got)
	}
	p.give(n - 1)
	if got, want := p.take(1), min(1, n-2); got != want {
		t.Errorf("after a release: took %d, want %d", got, want)
	}
}
