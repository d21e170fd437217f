package frame

import (
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// Sizes of the frame and its parts.
const (
	Version    = 1
	HeaderLen  = 28
	TagLen     = chacha20poly1305.Overhead
	Overhead   = HeaderLen + TagLen
	MaxFrame   = 1500 // an Ethernet payload without jumbo frames
	MaxPayload = MaxFrame - Overhead
	MinKeyLen  = 32
	MaxKeyLen  = 4096

	// ethMinPayload is the shortest Ethernet payload; NICs pad shorter
	// frames with zeros, which Open strips again (see Open).
	ethMinPayload = 46
)

// Flags in the header. They are authenticated.
const (
	// FlagAllLinks asks the receivers to send their heartbeats on every
	// link: the sender misses some peer on some link. See the heartbeat
	// alternation in daemons/concord-noded/internal/daemon.
	FlagAllLinks = 1 << 0

	knownFlags = FlagAllLinks
)

// KindOffset is where the kind byte stands in a frame, for a socket filter
// that sorts frames by kind before they are opened (see lib/driver/link's
// Defer).
const KindOffset = offKind

// Header field offsets.
const (
	offMagic       = 0
	offVersion     = 2
	offKind        = 3
	offCluster     = 4
	offSender      = 8
	offLink        = 10
	offFlags       = 11
	offIncarnation = 12
	offSeq         = 20
)

const hkdfInfo = "concord frame v1"

// Errors returned by Open. They are returned unwrapped and without
// allocation, so the receive loop can count each kind with ==.
var (
	ErrShort            = errors.New("frame: truncated")
	ErrTooBig           = errors.New("frame: longer than MaxFrame")
	ErrMagic            = errors.New("frame: bad magic")
	ErrVersion          = errors.New("frame: unknown version")
	ErrFlags            = errors.New("frame: unknown flags")
	ErrCluster          = errors.New("frame: other cluster")
	ErrAuth             = errors.New("frame: authentication failed")
	ErrReplay           = errors.New("frame: sequence already seen or too old")
	ErrStaleIncarnation = errors.New("frame: stale sender incarnation")
	errPayloadTooBig    = errors.New("frame: payload longer than MaxPayload")
)

// Header is the clear-text header of a frame.
type Header struct {
	Version     uint8
	Kind        uint8
	Cluster     uint32
	Sender      uint16
	Link        uint8
	Flags       uint8
	Incarnation uint64
	Seq         uint64
}

func newAEAD(key []byte, cluster uint32) (cipher.AEAD, error) {
	if len(key) < MinKeyLen || len(key) > MaxKeyLen {
		return nil, fmt.Errorf("frame: cluster key is %d bytes, want %d..%d", len(key), MinKeyLen, MaxKeyLen)
	}
	var salt [4]byte
	binary.BigEndian.PutUint32(salt[:], cluster)
	k := make([]byte, chacha20poly1305.KeySize)
	if _, err := io.ReadFull(hkdf.New(sha256.New, key, salt[:], []byte(hkdfInfo)), k); err != nil {
		return nil, fmt.Errorf("frame: deriving key: %w", err)
	}
	return chacha20poly1305.NewX(k)
}

func putNonce(n *[chacha20poly1305.NonceSizeX]byte, incarnation, seq uint64, sender uint16) {
	binary.BigEndian.PutUint64(n[0:], incarnation)
	binary.BigEndian.PutUint64(n[8:], seq)
	binary.BigEndian.PutUint16(n[16:], sender)
	// n[18:24] stay zero.
}

// putAD copies the header without the link index byte into ad.
func putAD(ad *[HeaderLen - 1]byte, hdr []byte) {
	copy(ad[:offLink], hdr[:offLink])
	copy(ad[offLink:], hdr[offLink+1:HeaderLen])
}

// Sealer seals frames sent by the local node. It is safe for concurrent use.
type Sealer struct {
	aead        cipher.AEAD
	cluster     uint32
	sender      uint16
	incarnation uint64
	seq         atomic.Uint64 // last sequence number used
}

// NewSealer returns a Sealer for frames from node sender of the given
// cluster. incarnation must be larger than any incarnation this node used
// before with the same key, or nonces repeat.
func NewSealer(key []byte, cluster uint32, sender uint16, incarnation uint64) (*Sealer, error) {
	aead, err := newAEAD(key, cluster)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead, cluster: cluster, sender: sender, incarnation: incarnation}, nil
}

// Seal appends a frame of the given kind carrying payload to dst, with link
// index 0, and returns the extended slice and the frame's sequence number.
// payload must not overlap dst's spare capacity. It fails only if payload is
// longer than MaxPayload.
func (s *Sealer) Seal(dst []byte, kind uint8, payload []byte) ([]byte, uint64, error) {
	return s.SealFlags(dst, kind, 0, payload)
}

// SealFlags is Seal with header flags, a combination of the Flag constants.
func (s *Sealer) SealFlags(dst []byte, kind, flags uint8, payload []byte) ([]byte, uint64, error) {
	if flags&^knownFlags != 0 {
		return dst, 0, fmt.Errorf("%w: %#x", ErrFlags, flags)
	}
	if len(payload) > MaxPayload {
		return dst, 0, fmt.Errorf("%w: %d bytes", errPayloadTooBig, len(payload))
	}
	seq := s.seq.Add(1)
	var hdr [HeaderLen]byte
	hdr[offMagic], hdr[offMagic+1] = 'C', 'C'
	hdr[offVersion] = Version
	hdr[offKind] = kind
	hdr[offFlags] = flags
	binary.BigEndian.PutUint32(hdr[offCluster:], s.cluster)
	binary.BigEndian.PutUint16(hdr[offSender:], s.sender)
	binary.BigEndian.PutUint64(hdr[offIncarnation:], s.incarnation)
	binary.BigEndian.PutUint64(hdr[offSeq:], seq)

	var nonce [chacha20poly1305.NonceSizeX]byte
	putNonce(&nonce, s.incarnation, seq, s.sender)
	var ad [HeaderLen - 1]byte
	putAD(&ad, hdr[:])

	out := append(dst, hdr[:]...)
	out = s.aead.Seal(out, nonce[:], payload, ad[:])
	return out, seq, nil
}

// SetLink patches the link index of a sealed frame in place. The link index
// is not authenticated, so each link's copy shares the same tag.
func SetLink(frame []byte, link uint8) {
	if len(frame) > offLink {
		frame[offLink] = link
	}
}

// ParseHeader decodes and checks the clear-text header without
// authenticating anything; use it only for logging.
func ParseHeader(frame []byte) (Header, error) {
	if len(frame) < Overhead {
		return Header{}, ErrShort
	}
	if len(frame) > MaxFrame {
		return Header{}, ErrTooBig
	}
	if frame[offMagic] != 'C' || frame[offMagic+1] != 'C' {
		return Header{}, ErrMagic
	}
	if frame[offVersion] != Version {
		return Header{}, ErrVersion
	}
	if frame[offFlags]&^knownFlags != 0 {
		return Header{}, ErrFlags
	}
	return Header{
		Version:     frame[offVersion],
		Kind:        frame[offKind],
		Cluster:     binary.BigEndian.Uint32(frame[offCluster:]),
		Sender:      binary.BigEndian.Uint16(frame[offSender:]),
		Link:        frame[offLink],
		Flags:       frame[offFlags],
		Incarnation: binary.BigEndian.Uint64(frame[offIncarnation:]),
		Seq:         binary.BigEndian.Uint64(frame[offSeq:]),
	}, nil
}

// Opener authenticates and decrypts frames from the other nodes of one
// cluster and rejects replays. It is safe for concurrent use.
type Opener struct {
	aead    cipher.AEAD
	cluster uint32

	mu      sync.Mutex
	senders map[uint16]*window
}

// NewOpener returns an Opener for frames of the given cluster.
func NewOpener(key []byte, cluster uint32) (*Opener, error) {
	aead, err := newAEAD(key, cluster)
	if err != nil {
		return nil, err
	}
	return &Opener{aead: aead, cluster: cluster, senders: make(map[uint16]*window)}, nil
}

// Open checks frame, appends its decrypted payload to dst and returns the
// header and the extended slice. To decrypt in place, pass
// frame[HeaderLen:HeaderLen] as dst; otherwise dst must not overlap frame.
//
// A frame whose sequence number was already accepted (for example the copy
// of a frame from a second link) or whose incarnation is older than the
// sender's newest is rejected with ErrReplay or ErrStaleIncarnation before
// any cryptography, so duplicates are cheap. The replay state moves only
// after a frame authenticates, so forged frames cannot disturb it.
//
// A frame of exactly 46 bytes whose tag fails is retried without up to two
// trailing zero bytes: Ethernet pads payloads shorter than 46 bytes, and
// the shortest frames are 44 bytes.
func (o *Opener) Open(dst, frame []byte) (Header, []byte, error) {
	h, err := ParseHeader(frame)
	if err != nil {
		return Header{}, dst, err
	}
	if h.Cluster != o.cluster {
		return h, dst, ErrCluster
	}

	o.mu.Lock()
	err = o.senders[h.Sender].check(h.Incarnation, h.Seq)
	o.mu.Unlock()
	if err != nil {
		return h, dst, err
	}

	var nonce [chacha20poly1305.NonceSizeX]byte
	putNonce(&nonce, h.Incarnation, h.Seq, h.Sender)
	var ad [HeaderLen - 1]byte
	putAD(&ad, frame)

	out, err := o.aead.Open(dst, nonce[:], frame[HeaderLen:], ad[:])
	for n := len(frame); err != nil && len(frame) == ethMinPayload && n > Overhead && frame[n-1] == 0; {
		n--
		out, err = o.aead.Open(dst, nonce[:], frame[HeaderLen:n], ad[:])
	}
	if err != nil {
		return h, dst, ErrAuth
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	w := o.senders[h.Sender]
	if w == nil {
		w = new(window)
		o.senders[h.Sender] = w
	}
	// Check again: another goroutine may have accepted the same frame
	// from another link while this one was decrypting.
	if err := w.accept(h.Incarnation, h.Seq); err != nil {
		return h, dst, err
	}
	return h, out, nil
}

// Authentic reports whether frame carries a valid tag for its header,
// without decrypting into the caller's memory and without touching the
// replay state. A receiver uses it on the duplicates that Open rejects
// cheaply, before letting such a copy prove that a link works: only a
// frame sealed with the cluster key may do that.
func (o *Opener) Authentic(frame []byte) bool {
	h, err := ParseHeader(frame)
	if err != nil || h.Cluster != o.cluster {
		return false
	}
	var nonce [chacha20poly1305.NonceSizeX]byte
	putNonce(&nonce, h.Incarnation, h.Seq, h.Sender)
	var ad [HeaderLen - 1]byte
	putAD(&ad, frame)
	var buf [MaxFrame]byte
	_, err = o.aead.Open(buf[:0], nonce[:], frame[HeaderLen:], ad[:])
	for n := len(frame); err != nil && len(frame) == ethMinPayload && n > Overhead && frame[n-1] == 0; {
		n--
		_, err = o.aead.Open(buf[:0], nonce[:], frame[HeaderLen:n], ad[:])
	}
	return err == nil
}

// Forget drops the replay state of sender, for example when the node is
// removed from the cluster. Until the sender is heard again, any of its
// old frames that authenticate would be accepted once more.
func (o *Opener) Forget(sender uint16) {
	o.mu.Lock()
	delete(o.senders, sender)
	o.mu.Unlock()
}
