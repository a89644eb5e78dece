package zipkinapi

import (
	"encoding/hex"
	"strconv"
	"unicode/utf8"
)

// The JSON is written by hand, in the member order of Zipkin's
// V2SpanWriter and DependencyLinkBytesEncoder and with Zipkin's string
// escaping (JsonEscaper), omitting absent members as Zipkin does.

// appendSpan appends s as a Zipkin v2 JSON span object.
func appendSpan(b []byte, s *zspan) []byte {
	b = append(b, `{"traceId":"`...)
	b = appendTraceID(b, s.TraceID)
	b = append(b, '"')
	if s.HasParent {
		b = append(b, `,"parentId":"`...)
		b = hex.AppendEncode(b, s.ParentID[:])
		b = append(b, '"')
	}
	b = append(b, `,"id":"`...)
	b = hex.AppendEncode(b, s.ID[:])
	b = append(b, '"')
	if s.Kind != "" {
		b = append(b, `,"kind":"`...)
		b = append(b, s.Kind...)
		b = append(b, '"')
	}
	if s.Name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, s.Name)
	}
	if s.Timestamp != 0 {
		b = append(b, `,"timestamp":`...)
		b = strconv.AppendInt(b, s.Timestamp, 10)
	}
	if s.Duration != 0 {
		b = append(b, `,"duration":`...)
		b = strconv.AppendInt(b, s.Duration, 10)
	}
	if s.Local != nil {
		b = append(b, `,"localEndpoint":`...)
		b = appendEndpoint(b, s.Local)
	}
	if s.Remote != nil {
		b = append(b, `,"remoteEndpoint":`...)
		b = appendEndpoint(b, s.Remote)
	}
	if len(s.Annotations) > 0 {
		b = append(b, `,"annotations":[`...)
		for i, a := range s.Annotations {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"timestamp":`...)
			b = strconv.AppendInt(b, a.Timestamp, 10)
			b = append(b, `,"value":`...)
			b = appendString(b, a.Value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(s.Tags) > 0 {
		b = append(b, `,"tags":{`...)
		for i, t := range s.Tags {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, t.Key)
			b = append(b, ':')
			b = appendString(b, t.Value)
		}
		b = append(b, '}')
	}
	if s.Shared {
		b = append(b, `,"shared":true`...)
	}
	return append(b, '}')
}

func appendEndpoint(b []byte, e *endpoint) []byte {
	b = append(b, '{')
	n := len(b)
	if e.ServiceName != "" {
		b = append(b, `"serviceName":`...)
		b = appendString(b, e.ServiceName)
	}
	if e.IPv4 != "" {
		if len(b) > n {
			b = append(b, ',')
		}
		b = append(b, `"ipv4":`...)
		b = appendString(b, e.IPv4)
	}
	if e.IPv6 != "" {
		if len(b) > n {
			b = append(b, ',')
		}
		b = append(b, `"ipv6":`...)
		b = appendString(b, e.IPv6)
	}
	if e.Port != 0 {
		if len(b) > n {
			b = append(b, ',')
		}
		b = append(b, `"port":`...)
		b = strconv.AppendInt(b, int64(e.Port), 10)
	}
	return append(b, '}')
}

// appendTrace appends the spans of one trace as a JSON array.
func appendTrace(b []byte, spans []zspan) []byte {
	b = append(b, '[')
	for i := range spans {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSpan(b, &spans[i])
	}
	return append(b, ']')
}

// appendStrings appends a JSON array of strings.
func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// dependencyLink is a Zipkin DependencyLink.
type dependencyLink struct {
	Parent, Child         string
	CallCount, ErrorCount int64
}

// appendLinks appends dependency links as Zipkin writes them (errorCount
// only when positive).
func appendLinks(b []byte, links []dependencyLink) []byte {
	b = append(b, '[')
	for i, l := range links {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"parent":`...)
		b = appendString(b, l.Parent)
		b = append(b, `,"child":`...)
		b = appendString(b, l.Child)
		b = append(b, `,"callCount":`...)
		b = strconv.AppendInt(b, l.CallCount, 10)
		if l.ErrorCount > 0 {
			b = append(b, `,"errorCount":`...)
			b = strconv.AppendInt(b, l.ErrorCount, 10)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendTraceID(b []byte, id [16]byte) []byte {
	if [8]byte(id[:8]) == ([8]byte{}) {
		return hex.AppendEncode(b, id[8:])
	}
	return hex.AppendEncode(b, id[:])
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string escaped as Zipkin's JsonEscaper
// does: quotation mark, reverse solidus and control characters (\t, \b,
// \n, \r, \f by name, the others as \u00XX), and U+2028 and U+2029.
// Invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
