package reduce

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestLayoutReadsPiecesInOrder(t *testing.T) {
	src := []byte("0123456789abcdefghij")
	var l Layout
	l.Literal([]byte("HEAD"))
	l.Copy(2, 3) // 234
	l.Copy(5, 2) // 56, joins the previous range
	l.Literal([]byte("-"))
	l.Copy(10, 5) // abcde
	if l.Pieces() != 4 {
		t.Fatalf("pieces = %d, want 4 (adjacent ranges join)", l.Pieces())
	}
	want := "HEAD23456-abcde"
	if l.Size() != int64(len(want)) || l.SourceBytes() != 10 {
		t.Fatalf("size %d, source bytes %d", l.Size(), l.SourceBytes())
	}
	f := l.Open(bytes.NewReader(src))
	got, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
	if err != nil || string(got) != want {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
	// Every window, so that reads across piece boundaries are covered.
	for off := range len(want) {
		for n := 1; off+n <= len(want); n++ {
			p := make([]byte, n)
			k, err := f.ReadAt(p, int64(off))
			if err != nil || k != n || string(p) != want[off:off+n] {
				t.Fatalf("ReadAt(%d, %d) = %q, %d, %v", off, n, p[:k], k, err)
			}
		}
	}
	p := make([]byte, 4)
	if k, err := f.ReadAt(p, int64(len(want)-2)); k != 2 || !errors.Is(err, io.EOF) {
		t.Fatalf("read past the end: %d, %v", k, err)
	}
}

func TestLayoutSourceShorterThanPlanned(t *testing.T) {
	var l Layout
	l.Copy(0, 10)
	_, err := l.Open(bytes.NewReader([]byte("short"))).ReadAt(make([]byte, 10), 0)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
}
