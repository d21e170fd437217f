package membership

// TimeoutDetector suspects a peer not heard from for more than SuspectTicks.
type TimeoutDetector struct {
	SuspectTicks uint64
	last         map[NodeID]uint64
}

// NewTimeoutDetector returns a TimeoutDetector; suspectTicks <= 0 means 15.
func NewTimeoutDetector(suspectTicks int) *TimeoutDetector {
	if suspectTicks <= 0 {
		suspectTicks = 15
	}
	return &TimeoutDetector{SuspectTicks: uint64(suspectTicks), last: map[NodeID]uint64{}}
}

var _ Detector = (*TimeoutDetector)(nil)

// Heard implements Detector.
func (d *TimeoutDetector) Heard(from NodeID, tick uint64) {
	if d.last == nil {
		d.last = map[NodeID]uint64{}
	}
	if tick >= d.last[from] {
		d.last[from] = tick
	}
}

// Alive implements Detector.
func (d *TimeoutDetector) Alive(peer NodeID, tick uint64) bool {
	t, ok := d.last[peer]
	return ok && tick <= t+d.SuspectTicks
}

// Forget implements Detector.
func (d *TimeoutDetector) Forget(peer NodeID) { delete(d.last, peer) }
