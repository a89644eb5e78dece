package store

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/flowscope/flowscope/otlpwire"
)

// Chunk values (bucket "chunks" and "mchunks") start with a fixed header:
//
//	[0]    format version (chunkVersion)
//	[1:9]  commit time, Unix nanoseconds, big endian
//
// Span chunks continue with a zstd frame holding a protobuf
// ExportTraceServiceRequest with only the valid spans of one export request.
// Metric chunks continue with a small index (see metrics.go) and then a zstd
// frame holding an ExportMetricsServiceRequest.
const (
	chunkVersion    = 1
	chunkHeaderSize = 9
)

var (
	zenc     *zstd.Encoder
	zdec     *zstd.Decoder
	zOnce    sync.Once
	tracesPl = sync.Pool{New: func() any { return new(otlpwire.Traces) }}
)

func codecs() (*zstd.Encoder, *zstd.Decoder) {
	zOnce.Do(func() {
		var err error
		zenc, err = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic("BUG: zstd encoder: " + err.Error())
		}
		zdec, err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			panic("BUG: zstd decoder: " + err.Error())
		}
	})
	return zenc, zdec
}

// compressChunk returns header space followed by the zstd compression of
// payload, with extra bytes of index inserted between them by the caller.
func compressChunk(extra, payload []byte) []byte {
	enc, _ := codecs()
	dst := make([]byte, chunkHeaderSize, chunkHeaderSize+len(extra)+len(payload)/3+64)
	dst[0] = chunkVersion
	dst = append(dst, extra...)
	return enc.EncodeAll(payload, dst)
}

func setCommitTime(chunk []byte, ns int64) {
	binary.BigEndian.PutUint64(chunk[1:9], uint64(ns))
}

func chunkCommitTime(chunk []byte) int64 {
	return int64(binary.BigEndian.Uint64(chunk[1:9]))
}

// decodedChunk is a span chunk decompressed and parsed.
type decodedChunk struct {
	seq      uint64
	commitNs int64
	payload  []byte
	traces   otlpwire.Traces
}

// decodeSpanChunk decompresses and parses a span chunk value. The value may
// live in a bbolt mmap: the result does not alias it.
func decodeSpanChunk(seq uint64, v []byte) (*decodedChunk, error) {
	if len(v) < chunkHeaderSize || v[0] != chunkVersion {
		return nil, fmt.Errorf("chunk %d: bad header", seq)
	}
	_, dec := codecs()
	payload, err := dec.DecodeAll(v[chunkHeaderSize:], nil)
	if err != nil {
		return nil, fmt.Errorf("chunk %d: decompress: %w", seq, err)
	}
	d := &decodedChunk{seq: seq, commitNs: chunkCommitTime(v), payload: payload}
	if err := parseTraces(&d.traces, payload); err != nil {
		return nil, fmt.Errorf("chunk %d: %w", seq, err)
	}
	return d, nil
}
