package e2e

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"

	// The proto codec handles the responses.
	_ "google.golang.org/grpc/encoding/proto"
)

// rawBytes is a pre-encoded request sent as is.
type rawBytes []byte

// bytesCodec sends rawBytes unchanged and decodes responses with protobuf.
type bytesCodec struct{}

func (bytesCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(rawBytes); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return nil, fmt.Errorf("bytesCodec: cannot marshal %T", v)
}

func (bytesCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return encoding.GetCodecV2("proto").Unmarshal(data, v)
}

func (bytesCodec) Name() string { return "proto" }
