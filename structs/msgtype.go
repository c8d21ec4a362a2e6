package structs

import (
	"bytes"
	"fmt"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// MessageType is the first byte of every Raft entry and says how to decode
// the rest. The list is append-only: never renumber or reuse a value.
type MessageType uint8

const (
	JobRegisterRequestType MessageType = iota
	JobDeregisterRequestType
	EvalUpdateRequestType
	EvalDeleteRequestType
	NodeRegisterRequestType
	NodeDeregisterRequestType
	NodeUpdateStatusRequestType
	NodeUpdateDrainRequestType
	NodeUpdateEligibilityRequestType
	AllocClientUpdateRequestType
	ApplyPlanResultsRequestType
	AllocUpdateDesiredTransitionRequestType
	DeploymentStatusUpdateRequestType
	DeploymentPromoteRequestType
	DeploymentAllocHealthRequestType
	DeploymentDeleteRequestType
	JobBatchDeregisterRequestType
	AllocGCRequestType
	ServiceRegistrationUpsertRequestType
	ServiceRegistrationDeleteRequestType
)

// IgnoreUnknownTypeFlag set on a message type tells servers that do not know
// the type to skip the entry instead of stopping: it lets a newer leader add
// optional entries during a rolling upgrade.
const IgnoreUnknownTypeFlag MessageType = 128

// msgpackHandle is shared: go-msgpack handles are safe for concurrent use
// once configured.
var msgpackHandle = func() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.RawToString = true
	h.MapType = nil
	return h
}()

// MsgpackHandle returns the handle used for Raft entries, snapshots and RPC.
func MsgpackHandle() *codec.MsgpackHandle { return msgpackHandle }

// Encode returns the Raft entry for msg: its type byte, then msgpack.
func Encode(t MessageType, msg any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(byte(t))
	if err := codec.NewEncoder(&buf, msgpackHandle).Encode(msg); err != nil {
		return nil, fmt.Errorf("encoding message type %d: %w", t, err)
	}
	return buf.Bytes(), nil
}

// Decode decodes a msgpack body (the entry without its type byte) into out.
func Decode(body []byte, out any) error {
	return codec.NewDecoderBytes(body, msgpackHandle).Decode(out)
}
