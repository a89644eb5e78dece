package otlpjson

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"unicode/utf8"
)

// invalidID is what an ID string that is not valid hex decodes to: one byte,
// a length no OTLP ID has (trace IDs are 16 bytes, span IDs 8, and an absent
// parent span ID is empty), so validation downstream rejects the item that
// carries it while the rest of the payload is kept.
var invalidID = []byte{0xff}

// isIDKey reports whether a JSON object key names an OTLP trace or span ID
// field. In the trace and metrics schemas these names occur only in Span,
// Span.Link and Exemplar (and in LogRecord for logs), always as bytes IDs, so
// the rewrite needs no knowledge of where in the tree the key is.
func isIDKey(k string) bool {
	switch k {
	case "traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id":
		return true
	}
	return false
}

// idConv converts the JSON string token tok (quotes included) of an ID value
// and appends the replacement token to dst.
type idConv func(dst, tok []byte, escaped bool) []byte

// rewriteIDs copies the JSON document src, passing the string value
// of every ID member (see isIDKey) through conv. With compact set, whitespace
// outside strings is dropped; otherwise the bytes between tokens are kept and
// a replacement shorter than its original is followed by spaces, so every
// byte offset after it stays where it was (protojson's error positions then
// point into the caller's document).
//
// rewriteIDs is a lexer, not a validator: it understands strings and
// whitespace and leaves everything else to protojson. On input it cannot
// lex (an unterminated string) it copies the rest unchanged.
//
// The returned slice is src itself when nothing had to change; otherwise it
// is allocated with capacity capHint, once the first change is met.
func rewriteIDs(src []byte, conv idConv, compact bool, capHint int) []byte {
	var dst []byte
	last := 0 // src[last:i] is not yet copied to dst
	changed := false
	flush := func(i int) {
		if dst == nil {
			dst = make([]byte, 0, capHint)
		}
		dst = append(dst, src[last:i]...)
		last = i
		changed = true
	}
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '"':
			end, esc, ok := scanString(src, i)
			if !ok {
				i = len(src)
				continue
			}
			// A string followed by ':' is a key.
			colon := skipSpace(src, end)
			if colon >= len(src) || src[colon] != ':' || !isIDKey(unquote(src[i:end], esc)) {
				i = end
				continue
			}
			val := skipSpace(src, colon+1)
			if val >= len(src) || src[val] != '"' {
				i = end // null, a number…: protojson decides
				continue
			}
			vend, vesc, ok := scanString(src, val)
			if !ok {
				i = len(src)
				continue
			}
			if compact {
				flush(end)
				dst = append(dst, ':')
			} else {
				flush(val)
			}
			start := len(dst)
			dst = conv(dst, src[val:vend], vesc)
			if !compact {
				for n := len(dst) - start; n < vend-val; n++ {
					dst = append(dst, ' ')
				}
			}
			last = vend
			i = vend
		case compact && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			flush(i)
			i = skipSpace(src, i)
			last = i
		default:
			i++
		}
	}
	if !changed {
		return src
	}
	return append(dst, src[last:]...)
}

// scanString returns the index after the closing quote of the string that
// starts at src[i] == '"', and whether it holds a backslash escape.
func scanString(src []byte, i int) (end int, escaped, ok bool) {
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '"':
			return j + 1, escaped, true
		case '\\':
			escaped = true
			j++
		}
	}
	return 0, false, false
}

func skipSpace(src []byte, i int) int {
	for i < len(src) {
		switch src[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// unquote returns the content of the JSON string token tok, or "" when an
// escaped token does not decode.
func unquote(tok []byte, escaped bool) string {
	if !escaped {
		return string(tok[1 : len(tok)-1])
	}
	var s string
	if json.Unmarshal(tok, &s) != nil {
		return ""
	}
	return s
}

// hexToBase64 is the idConv of unmarshalling: it turns a hex ID into the
// base64 that protojson reads bytes fields from. Hex is accepted in either
// case. A string that is not hex becomes the base64 of invalidID, unless it
// is not a valid JSON string at all, in which case it is left for protojson
// to report.
func hexToBase64(dst, tok []byte, escaped bool) []byte {
	content := tok[1 : len(tok)-1]
	if escaped {
		var s string
		if json.Unmarshal(tok, &s) != nil || !utf8.Valid(tok) {
			return append(dst, tok...) // protojson reports it
		}
		content = []byte(s)
	}
	var scratch [32]byte
	raw := scratch[:0]
	if n := len(content) / 2; n > len(scratch) {
		raw = make([]byte, 0, n)
	}
	raw, err := hex.AppendDecode(raw, content)
	if err != nil || len(content)%2 != 0 {
		if !escaped && !validStringContent(content) {
			return append(dst, tok...) // protojson reports it
		}
		raw = invalidID
	}
	// Unpadded base64 is never longer than the hex it replaces, and
	// protojson reads it: it picks the unpadded alphabet whenever the length
	// is not a multiple of four, and the padded one reads it otherwise.
	dst = append(dst, '"')
	dst = base64.RawStdEncoding.AppendEncode(dst, raw)
	return append(dst, '"')
}

// validStringContent reports whether the unescaped content of a JSON string
// is valid: UTF-8 without control characters.
func validStringContent(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return false
		}
	}
	return utf8.Valid(b)
}

// base64ToHex is the idConv of marshalling: protojson wrote the ID as
// padded standard base64, and OTLP/JSON wants lowercase hex.
func base64ToHex(dst, tok []byte, escaped bool) []byte {
	if escaped {
		return append(dst, tok...) // protojson never escapes base64
	}
	content := tok[1 : len(tok)-1]
	var scratch [32]byte
	raw := scratch[:0]
	if n := base64.StdEncoding.DecodedLen(len(content)); n > len(scratch) {
		raw = make([]byte, 0, n)
	}
	raw, err := base64.StdEncoding.AppendDecode(raw, content)
	if err != nil {
		return append(dst, tok...)
	}
	dst = append(dst, '"')
	dst = hex.AppendEncode(dst, raw)
	return append(dst, '"')
}
