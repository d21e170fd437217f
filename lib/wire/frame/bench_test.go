package frame

import (
	"fmt"
	"testing"
)

func BenchmarkSeal(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			s, _ := newPair(b)
			payload := make([]byte, size)
			buf := make([]byte, 0, MaxFrame)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.Seal(buf[:0], KindMembership, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			s, o := newPair(b)
			payload := make([]byte, size)
			// Seal every frame up front so each Open sees a fresh seq.
			frames := make([][]byte, 0, 1<<16)
			for range cap(frames) {
				frames = append(frames, mustSeal(b, s, KindMembership, payload))
			}
			out := make([]byte, 0, MaxFrame)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == len(frames) {
					b.StopTimer()
					o.Forget(testSender)
					i = 0
					b.StartTimer()
				}
				if _, _, err := o.Open(out[:0], frames[i]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
	// The duplicate from a second link is rejected before any cryptography.
	b.Run("duplicate", func(b *testing.B) {
		s, o := newPair(b)
		f := mustSeal(b, s, KindMembership, make([]byte, 1024))
		if _, _, err := o.Open(nil, f); err != nil {
			b.Fatal(err)
		}
		SetLink(f, 1)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := o.Open(nil, f); err != ErrReplay {
				b.Fatal(err)
			}
		}
	})
}
