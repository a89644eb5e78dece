package synthetics

import (
	"crypto/rand"
	"encoding/hex"
)

// Random identifiers of runs, traces and spans.

// randomID fills b with random bytes, not all zero (OTLP refuses zero
// trace and span IDs).
func randomID(b []byte) {
	for {
		rand.Read(b)
		for _, c := range b {
			if c != 0 {
				return
			}
		}
	}
}

func newTraceID() (id [16]byte) { randomID(id[:]); return id }

func newSpanID() (id [8]byte) { randomID(id[:]); return id }

// newRunID returns 8 random bytes as 16 lowercase hex digits.
func newRunID() string {
	id := newSpanID()
	return hex.EncodeToString(id[:])
}

// newUUID returns a random (version 4) UUID in its canonical form.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
