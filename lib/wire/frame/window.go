package frame

// WindowSize is how many sequence numbers below the highest one seen are
// still accepted once each, so frames reordered across links survive.
const WindowSize = 1024

// The bitmap is a ring one word longer than the window, so the word being
// entered can be cleared whole without losing bits still inside the window.
const windowWords = WindowSize/64 + 1

// window is the replay state of one sender.
type window struct {
	incarnation uint64
	top         uint64 // highest sequence number accepted
	seen        bool   // whether any sequence number of incarnation was accepted
	bits        [windowWords]uint64
}

func bitPos(seq uint64) (word int, mask uint64) {
	return int((seq / 64) % windowWords), 1 << (seq % 64)
}

// check reports whether (incarnation, seq) would be rejected, without
// changing w. A nil window accepts everything.
func (w *window) check(incarnation, seq uint64) error {
	if w == nil {
		return nil
	}
	if incarnation < w.incarnation {
		return ErrStaleIncarnation
	}
	if incarnation > w.incarnation || !w.seen {
		return nil
	}
	if seq > w.top {
		return nil
	}
	if w.top-seq >= WindowSize {
		return ErrReplay
	}
	i, m := bitPos(seq)
	if w.bits[i]&m != 0 {
		return ErrReplay
	}
	return nil
}

// accept checks (incarnation, seq) and records it if it passes.
func (w *window) accept(incarnation, seq uint64) error {
	if err := w.check(incarnation, seq); err != nil {
		return err
	}
	if incarnation > w.incarnation || !w.seen {
		*w = window{incarnation: incarnation, top: seq, seen: true}
	} else if seq > w.top {
		if seq-w.top >= WindowSize+64 {
			w.bits = [windowWords]uint64{}
		} else {
			// Clear every word entered between the old top and seq.
			for k := w.top/64 + 1; k <= seq/64; k++ {
				w.bits[k%windowWords] = 0
			}
		}
		w.top = seq
	}
	i, m := bitPos(seq)
	w.bits[i] |= m
	return nil
}
