package state

import "fmt"

// MessageType says what a Raft log entry asks the FSM to do. Values are
// written to disk: never renumber one, only add.
type MessageType uint8

// The commands the FSM applies.
const (
	RegisterRequestType   MessageType = 1
	DeregisterRequestType MessageType = 2
	KVSRequestType        MessageType = 3
	SessionRequestType    MessageType = 4
	TxnRequestType        MessageType = 5
	ACLRequestType        MessageType = 6
	// CoordinateBatchUpdateType carries a batch of network coordinates
	// (Coordinates), as a leader commits what agents sent it.
	CoordinateBatchUpdateType MessageType = 7
	// PreparedQueryRequestType creates, updates or deletes a prepared
	// query (PreparedQueryRequest).
	PreparedQueryRequestType MessageType = 8
	// AutopilotRequestType sets autopilot's configuration
	// (AutopilotRequest). 8 is the prepared queries'.
	AutopilotRequestType MessageType = 9
)

func (t MessageType) String() string {
	switch t {
	case RegisterRequestType:
		return "register"
	case DeregisterRequestType:
		return "deregister"
	case KVSRequestType:
		return "kv"
	case SessionRequestType:
		return "session"
	case TxnRequestType:
		return "txn"
	case ACLRequestType:
		return "acl"
	case CoordinateBatchUpdateType:
		return "coordinate batch update"
	case AutopilotRequestType:
		return "autopilot"
	case PreparedQueryRequestType:
		return "prepared query"
	}
	return fmt.Sprintf("message type %d", uint8(t))
}
