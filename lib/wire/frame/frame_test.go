package frame

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

const (
	testCluster     = 0x0c0ffee1
	testSender      = 0x0102
	testIncarnation = 0x0000_0193_5a2b_c0de
)

func testKey(b byte) []byte {
	k := make([]byte, 64)
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func newPair(t testing.TB) (*Sealer, *Opener) {
	t.Helper()
	s, err := NewSealer(testKey(0), testCluster, testSender, testIncarnation)
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOpener(testKey(0), testCluster)
	if err != nil {
		t.Fatal(err)
	}
	return s, o
}

func mustSeal(t testing.TB, s *Sealer, kind uint8, payload []byte) []byte {
	t.Helper()
	f, _, err := s.Seal(nil, kind, payload)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The golden frame freezes the wire format: a change here breaks
// interoperation with released daemons.
const goldenFrame = "" +
	"4343" + "01" + "01" + "0c0ffee1" + "0102" + "00" + "00" +
	"000001935a2bc0de" + "0000000000000007"

func TestSealGolden(t *testing.T) {
	s, _ := newPair(t)
	s.seq.Store(6) // next frame gets seq 7
	f, seq, err := s.Seal([]byte("prefix"), KindMembership, []byte("hello, concord"))
	if err != nil {
		t.Fatal(err)
	}
	if seq != 7 {
		t.Fatalf("seq = %d, want 7", seq)
	}
	if !bytes.HasPrefix(f, []byte("prefix")) {
		t.Fatalf("Seal did not append to dst: %x", f)
	}
	f = f[len("prefix"):]
	got := hex.EncodeToString(f)
	want := goldenFrame + goldenTail
	if got != want {
		t.Fatalf("sealed frame\n got %s\nwant %s", got, want)
	}
	if ref := referenceSeal(t, testKey(0), f[:HeaderLen], []byte("hello, concord")); !bytes.Equal(ref, f) {
		t.Fatalf("reference construction differs\n got %x\nwant %x", f, ref)
	}
}

// goldenTail is the ciphertext and tag of "hello, concord".
const goldenTail = "9076fc215e82bfb3e44a00e530c9" + // ciphertext
	"98600bee755b54a31489cc21cb703020" // tag

// referenceSeal builds a frame straight from the spec in doc.go, without
// the package's helpers, to catch mistakes the golden value would freeze.
func referenceSeal(t *testing.T, clusterKey, hdr, payload []byte) []byte {
	salt := make([]byte, 4)
	binary.BigEndian.PutUint32(salt, binary.BigEndian.Uint32(hdr[4:8]))
	key := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, clusterKey, salt, []byte("concord frame v1")), key); err != nil {
		t.Fatal(err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 0, 24)
	nonce = append(nonce, hdr[12:20]...) // incarnation
	nonce = append(nonce, hdr[20:28]...) // seq
	nonce = append(nonce, hdr[8:10]...)  // sender
	nonce = append(nonce, make([]byte, 6)...)
	ad := append(append([]byte{}, hdr[:10]...), hdr[11:28]...)
	return aead.Seal(append([]byte{}, hdr...), nonce, payload, ad)
}

func TestRoundTrip(t *testing.T) {
	s, o := newPair(t)
	for _, size := range []int{0, 1, 2, 17, 64, 1024, MaxPayload} {
		payload := bytes.Repeat([]byte{0xa5}, size)
		f, seq, err := s.Seal(nil, KindConfig, payload)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if len(f) != size+Overhead {
			t.Fatalf("size %d: frame is %d bytes, want %d", size, len(f), size+Overhead)
		}
		SetLink(f, 2)
		h, got, err := o.Open(nil, f)
		if err != nil {
			t.Fatalf("size %d: Open: %v", size, err)
		}
		want := Header{Version: 1, Kind: KindConfig, Cluster: testCluster, Sender: testSender, Link: 2, Incarnation: testIncarnation, Seq: seq}
		if h != want {
			t.Fatalf("size %d: header %+v, want %+v", size, h, want)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("size %d: payload differs", size)
		}
	}
	if _, _, err := s.Seal(nil, KindConfig, make([]byte, MaxPayload+1)); err == nil {
		t.Fatal("Seal accepted a payload longer than MaxPayload")
	}
}

func TestOpenInPlace(t *testing.T) {
	s, o := newPair(t)
	f := mustSeal(t, s, KindProbe, []byte("in place please"))
	_, got, err := o.Open(f[HeaderLen:HeaderLen], f)
	if err != nil || string(got) != "in place please" {
		t.Fatalf("Open in place = %q, %v", got, err)
	}
}

// Ethernet pads payloads shorter than 46 bytes; the 44- and 45-byte
// frames must still open after padding.
func TestOpenEthernetPadding(t *testing.T) {
	s, o := newPair(t)
	for _, size := range []int{0, 1} {
		f := mustSeal(t, s, KindProbe, bytes.Repeat([]byte{7}, size))
		padded := append(f, make([]byte, ethMinPayload-len(f))...)
		_, got, err := o.Open(nil, padded)
		if err != nil || len(got) != size {
			t.Fatalf("payload %d bytes padded to 46: got %d bytes, %v", size, len(got), err)
		}
	}
	// A 2-byte payload ending in zero is not mistaken for padding.
	f := mustSeal(t, s, KindProbe, []byte{9, 0})
	_, got, err := o.Open(nil, f)
	if err != nil || !bytes.Equal(got, []byte{9, 0}) {
		t.Fatalf("2-byte payload: %x, %v", got, err)
	}
}

func TestOpenErrors(t *testing.T) {
	flip := func(off int) func(f []byte) []byte {
		return func(f []byte) []byte { f[off] ^= 0x10; return f }
	}
	tests := []struct {
		name   string
		mangle func(f []byte) []byte
		want   error
	}{
		{"nil", func([]byte) []byte { return nil }, ErrShort},
		{"short header", func(f []byte) []byte { return f[:HeaderLen-1] }, ErrShort},
		{"no tag", func(f []byte) []byte { return f[:Overhead-1] }, ErrShort},
		{"too big", func(f []byte) []byte { return append(f, make([]byte, MaxFrame)...) }, ErrTooBig},
		{"bad magic", flip(0), ErrMagic},
		{"version 2", func(f []byte) []byte { f[offVersion] = 2; return f }, ErrVersion},
		{"unknown flag", func(f []byte) []byte { f[offFlags] = 0x80; return f }, ErrFlags},
		{"known flag set after sealing", func(f []byte) []byte { f[offFlags] = FlagAllLinks; return f }, ErrAuth},
		{"other cluster", flip(offCluster + 3), ErrCluster},
		{"flipped kind", flip(offKind), ErrAuth},
		{"flipped sender", flip(offSender + 1), ErrAuth},
		{"flipped incarnation", flip(offIncarnation + 7), ErrAuth},
		{"flipped seq", flip(offSeq + 7), ErrAuth},
		{"flipped ciphertext", flip(HeaderLen + 3), ErrAuth},
		{"flipped tag", func(f []byte) []byte { f[len(f)-1] ^= 1; return f }, ErrAuth},
		{"truncated tag", func(f []byte) []byte { return f[:len(f)-1] }, ErrAuth},
		{"extra byte", func(f []byte) []byte { return append(f, 0) }, ErrAuth},
		{"link byte is not authenticated", func(f []byte) []byte { SetLink(f, 3); return f }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, o := newPair(t)
			f := mustSeal(t, s, KindMembership, []byte("some membership payload"))
			_, _, err := o.Open(nil, tt.mangle(f))
			if err != tt.want {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
			// Nothing that failed may disturb the replay state: the
			// genuine frame still opens.
			if tt.want != nil {
				if _, _, err := o.Open(nil, mustSealSeq(t, s, 1)); err != nil {
					t.Fatalf("genuine frame after %s: %v", tt.name, err)
				}
			}
		})
	}
}

// mustSealSeq reseals seq with the same payload as TestOpenErrors.
func mustSealSeq(t *testing.T, s *Sealer, seq uint64) []byte {
	t.Helper()
	s.seq.Store(seq - 1)
	return mustSeal(t, s, KindMembership, []byte("some membership payload"))
}

// Flags travel in the authenticated header; unknown ones cannot be sealed.
func TestSealFlags(t *testing.T) {
	s, o := newPair(t)
	f, _, err := s.SealFlags(nil, KindMembership, FlagAllLinks, []byte("hb"))
	if err != nil {
		t.Fatal(err)
	}
	h, p, err := o.Open(nil, f)
	if err != nil || h.Flags != FlagAllLinks || string(p) != "hb" {
		t.Fatalf("Open = %+v %q %v, want flags %#x and the payload", h, p, err, FlagAllLinks)
	}
	f, _, _ = s.SealFlags(nil, KindMembership, FlagAllLinks, []byte("hb"))
	f[offFlags] = 0
	if _, _, err := o.Open(nil, f); err != ErrAuth {
		t.Errorf("Open with the flag cleared = %v, want ErrAuth", err)
	}
	if _, _, err := s.SealFlags(nil, KindMembership, 0x40, []byte("hb")); !errors.Is(err, ErrFlags) {
		t.Errorf("SealFlags with an unknown flag: %v, want ErrFlags", err)
	}
	h, _, err = o.Open(nil, mustSeal(t, s, KindMembership, []byte("plain")))
	if err != nil || h.Flags != 0 {
		t.Errorf("Seal: flags %#x, err %v; want none", h.Flags, err)
	}
}

func TestOpenWrongKey(t *testing.T) {
	s, _ := newPair(t)
	o, err := NewOpener(testKey(1), testCluster)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.Open(nil, mustSeal(t, s, KindProbe, []byte("x"))); err != ErrAuth {
		t.Fatalf("wrong key: %v, want ErrAuth", err)
	}
}

func TestReplay(t *testing.T) {
	s, o := newPair(t)
	f := mustSeal(t, s, KindMembership, []byte("once"))
	if _, _, err := o.Open(nil, f); err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.Open(nil, f); err != ErrReplay {
		t.Fatalf("same frame twice: %v, want ErrReplay", err)
	}
	// The copy sent on link 1 is a duplicate of the link 0 copy.
	g := mustSeal(t, s, KindMembership, []byte("twice"))
	g1 := append([]byte{}, g...)
	SetLink(g1, 1)
	if h, _, err := o.Open(nil, g); err != nil || h.Link != 0 {
		t.Fatalf("link 0 copy: link %d, %v", h.Link, err)
	}
	if _, _, err := o.Open(nil, g1); err != ErrReplay {
		t.Fatalf("link 1 copy: %v, want ErrReplay", err)
	}

	// A restarted sender (new incarnation) is accepted from seq 1 again,
	// after which the old incarnation is stale.
	s2, err := NewSealer(testKey(0), testCluster, testSender, testIncarnation+1)
	if err != nil {
		t.Fatal(err)
	}
	old := mustSeal(t, s, KindMembership, []byte("late frame of old life"))
	if _, _, err := o.Open(nil, mustSeal(t, s2, KindMembership, []byte("new life"))); err != nil {
		t.Fatalf("new incarnation: %v", err)
	}
	if _, _, err := o.Open(nil, old); err != ErrStaleIncarnation {
		t.Fatalf("old incarnation: %v, want ErrStaleIncarnation", err)
	}

	// Forget drops the state, so the old life is accepted again.
	o.Forget(testSender)
	if _, _, err := o.Open(nil, old); err != nil {
		t.Fatalf("after Forget: %v", err)
	}

	// Senders have separate windows.
	s3, err := NewSealer(testKey(0), testCluster, testSender+1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.Open(nil, mustSeal(t, s3, KindMembership, []byte("other node"))); err != nil {
		t.Fatalf("other sender: %v", err)
	}
}

func TestWindow(t *testing.T) {
	type step struct {
		inc, seq uint64
		want     error
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{{1, 1, nil}, {1, 2, nil}, {1, 3, nil}, {1, 3, ErrReplay}}},
		{"reordered once", []step{{1, 5, nil}, {1, 3, nil}, {1, 4, nil}, {1, 3, ErrReplay}, {1, 4, ErrReplay}, {1, 5, ErrReplay}}},
		{"first frame any seq", []step{{1, 1 << 40, nil}, {1, 1<<40 - 1, nil}}},
		{"oldest in window", []step{{1, 2000, nil}, {1, 2000 - WindowSize + 1, nil}, {1, 2000 - WindowSize + 1, ErrReplay}}},
		{"just beyond window", []step{{1, 2000, nil}, {1, 2000 - WindowSize, ErrReplay}}},
		{"far beyond window", []step{{1, 2000, nil}, {1, 1, ErrReplay}}},
		{"jump clears ring", []step{{1, 10, nil}, {1, 10 + WindowSize + 64, nil}, {1, 10 + WindowSize + 63, nil}, {1, 10 + WindowSize, nil}, {1, 10 + 64, ErrReplay}}},
		{"jump by one word", []step{{1, 63, nil}, {1, 64, nil}, {1, 63, ErrReplay}, {1, 64 + 64*16, nil}, {1, 64, ErrReplay}, {1, 65, nil}}},
		{"ring reuse", []step{{1, 100, nil}, {1, 100 + 17*64, nil}, {1, 100 + 17*64 - 1, nil}, {1, 100 + 17*64 - 1, ErrReplay}}},
		{"new incarnation resets", []step{{1, 500, nil}, {2, 1, nil}, {2, 500, nil}, {1, 501, ErrStaleIncarnation}, {2, 1, ErrReplay}}},
		{"incarnation zero", []step{{0, 0, nil}, {0, 0, ErrReplay}, {0, 1, nil}}},
		{"seq max", []step{{1, ^uint64(0), nil}, {1, ^uint64(0), ErrReplay}, {1, ^uint64(0) - 1, nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := new(window)
			for i, st := range tt.steps {
				if err := w.accept(st.inc, st.seq); err != st.want {
					t.Fatalf("step %d (inc %d seq %d): %v, want %v", i, st.inc, st.seq, err, st.want)
				}
			}
		})
	}
}

// TestWindowOracle compares the ring with a set of every seen number.
func TestWindowOracle(t *testing.T) {
	w := new(window)
	seen := map[uint64]bool{}
	var top uint64
	x := uint64(12345)
	next := func() uint64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
	seq := uint64(5000)
	for i := 0; i < 200000; i++ {
		r := next()
		switch r % 4 {
		case 0:
			seq += r % 1500 // jump ahead, sometimes past the window
		default:
			seq = top - (r % 1100) // reorder near the edge
		}
		want := error(nil)
		if i > 0 && (seen[seq] || (seq <= top && top-seq >= WindowSize)) {
			want = ErrReplay
		}
		if err := w.accept(1, seq); err != want {
			t.Fatalf("step %d seq %d top %d: %v, want %v", i, seq, top, err, want)
		}
		if want == nil {
			seen[seq] = true
			if seq > top || i == 0 {
				top = seq
			}
		}
	}
}

func TestNewBadKey(t *testing.T) {
	for _, n := range []int{0, MinKeyLen - 1, MaxKeyLen + 1} {
		if _, err := NewSealer(make([]byte, n), 1, 1, 1); err == nil {
			t.Errorf("NewSealer accepted a %d-byte key", n)
		}
		if _, err := NewOpener(make([]byte, n), 1); err == nil {
			t.Errorf("NewOpener accepted a %d-byte key", n)
		}
	}
}

func TestErrorsDistinct(t *testing.T) {
	all := []error{ErrShort, ErrTooBig, ErrMagic, ErrVersion, ErrFlags, ErrCluster, ErrAuth, ErrReplay, ErrStaleIncarnation}
	for i, a := range all {
		for j, b := range all {
			if i != j && errors.Is(a, b) {
				t.Errorf("%v is %v", a, b)
			}
		}
	}
}

// Two links deliver copies of the same frames to two goroutines at once:
// each frame must be accepted exactly once.
func TestOpenConcurrentLinks(t *testing.T) {
	s, o := newPair(t)
	const n = 2000
	frames := make([][2][]byte, n)
	for i := range frames {
		f := mustSeal(t, s, KindMembership, []byte("heartbeat"))
		g := append([]byte{}, f...)
		SetLink(g, 1)
		frames[i] = [2][]byte{f, g}
	}
	accepted := make([][n]bool, 2)
	done := make(chan error, 2)
	for link := range 2 {
		go func() {
			for i := range n {
				_, _, err := o.Open(nil, frames[i][link])
				switch err {
				case nil:
					accepted[link][i] = true
				case ErrReplay:
				default:
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if accepted[0][i] == accepted[1][i] {
			t.Fatalf("frame %d accepted on link 0: %v, link 1: %v; want exactly one", i, accepted[0][i], accepted[1][i])
		}
	}
}

func TestAuthenticChecksTheTagOnly(t *testing.T) {
	key := bytes.Repeat([]byte{3}, 32)
	s, err := NewSealer(key, 9, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOpener(key, 9)
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := s.Seal(nil, 1, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.Open(nil, f); err != nil {
		t.Fatal(err)
	}
	// The copy from a second link: a replay for Open, yet authentic.
	SetLink(f, 1)
	if _, _, err := o.Open(nil, f); !errors.Is(err, ErrReplay) {
		t.Fatalf("second copy: %v, want ErrReplay", err)
	}
	if !o.Authentic(f) {
		t.Fatal("the second link's copy is authentic")
	}
	// A forged copy with the same seq is not.
	bad := append([]byte(nil), f...)
	bad[len(bad)-1] ^= 1
	if o.Authentic(bad) {
		t.Fatal("a flipped tag bit passed")
	}
	other, _ := NewOpener(bytes.Repeat([]byte{4}, 32), 9)
	if other.Authentic(f) {
		t.Fatal("a frame passed under the wrong key")
	}
	if o.Authentic(f[:10]) {
		t.Fatal("a truncated frame passed")
	}
}
