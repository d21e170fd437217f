package frame

import "fmt"

// Frame kinds: what the payload of a frame is. Open does not check the
// kind; receivers drop kinds they do not know. A kind's number never
// changes meaning: retire it instead.
const (
	KindMembership     = 1 // a membership message (lib/core/membership's encoding)
	KindConfig         = 2 // a fragment (see Fragment) of a config-store message (lib/store/confstore's encoding)
	KindProbe          = 3 // a Probe: does a cluster with replicated state already run?
	KindMembershipFrag = 4 // a fragment of a membership message too large for one frame
	KindNotMember      = 5 // a NotMember notice, to a node that sends but is not in the configuration
	KindStateLost      = 6 // a StateLost notice, to the configuration leader
	KindEcho           = 7 // an Echo request or reply, to one peer on one link: the link's round-trip time
	KindJoinRequest    = 8 // a JoinRequest, from a node that has only the key (sender 0), to everyone
	KindJoinConfig     = 9 // a fragment of a JoinConfig, the answer to a JoinRequest
	// KindHeartbeat is a membership heartbeat (lib/core/membership's
	// encoding of a MsgHeartbeat), apart from KindMembership so that the
	// links can hold heartbeats in the kernel until the receiver's next
	// tick: they only count per tick, and most frames are heartbeats.
	KindHeartbeat = 10
)

// KindName names a frame kind for logs and errors.
func KindName(kind uint8) string {
	switch kind {
	case KindMembership:
		return "membership"
	case KindConfig:
		return "config"
	case KindProbe:
		return "probe"
	case KindMembershipFrag:
		return "membership fragment"
	case KindNotMember:
		return "not-member notice"
	case KindStateLost:
		return "state-lost notice"
	case KindEcho:
		return "echo"
	case KindJoinRequest:
		return "join request"
	case KindHeartbeat:
		return "heartbeat"
	case KindJoinConfig:
		return "join configuration"
	}
	return fmt.Sprintf("unknown kind %d", kind)
}
