package importer

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Format is the format of an import file.
type Format string

// The formats Import reads.
const (
	// FormatZipkinV1 is a JSON array of Zipkin v1 spans (annotations,
	// binaryAnnotations): spigo's json_metrics/<arch>_flow.json.
	FormatZipkinV1 Format = "zipkin-v1"
	// FormatZipkinV2 is a JSON array of Zipkin v2 spans (kind,
	// localEndpoint, remoteEndpoint, tags).
	FormatZipkinV2 Format = "zipkin-v2"
	// FormatOTLPTraces is OTLP/JSON traces: one object with
	// "resourceSpans", or JSON Lines of such objects (the OpenTelemetry
	// Collector's file exporter).
	FormatOTLPTraces Format = "otlp-json-traces"
	// FormatOTLPMetrics is OTLP/JSON metrics: one object with
	// "resourceMetrics", or JSON Lines of such objects.
	FormatOTLPMetrics Format = "otlp-json-metrics"
	// FormatSpigoGuess is a spigo Guesstimate file
	// (json_metrics/<arch>.guess): latency samples per actor.
	FormatSpigoGuess Format = "spigo-guess"
	// FormatSpigoMetrics is an old spigo metrics JSON file
	// (json_metrics/<arch>_metrics.json, "counters" and "gauges").
	FormatSpigoMetrics Format = "spigo-metrics"
	// FormatSpigoGraph is a spigo graph JSON file (json/<arch>.json, a
	// "graph" array of nodes and edges): a declared architecture at
	// instance level.
	FormatSpigoGraph Format = "spigo-graph"
	// FormatSpigoArch is a spigo architecture definition
	// (json_arch/<arch>_arch.json, a "services" array): a declared
	// architecture at service level.
	FormatSpigoArch Format = "spigo-arch"
)

// formats lists every Format, in documentation order.
var formats = [...]Format{
	FormatZipkinV1, FormatZipkinV2, FormatOTLPTraces, FormatOTLPMetrics,
	FormatSpigoGuess, FormatSpigoMetrics, FormatSpigoGraph, FormatSpigoArch,
}

// Formats returns every format Import reads.
func Formats() []Format { return slices.Clone(formats[:]) }

// ParseFormat returns the Format named s. An empty s gives "" (detect);
// an unknown name is an error wrapping ingest.ErrInvalid.
func ParseFormat(s string) (Format, error) {
	if s == "" {
		return "", nil
	}
	for _, f := range formats {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = string(f)
	}
	return "", invalidf("unknown format name %q (want one of %s)", clip(s), strings.Join(names, ", "))
}

// DetectBytes is how much of the start of an input Import gives Detect.
const DetectBytes = 64 << 10

// Keys of a top-level JSON object that decide its format.
var objectKeys = map[string]Format{
	"resourceSpans":    FormatOTLPTraces,
	"resource_spans":   FormatOTLPTraces,
	"resourceMetrics":  FormatOTLPMetrics,
	"resource_metrics": FormatOTLPMetrics,
	"space":            FormatSpigoGuess,
	"counters":         FormatSpigoMetrics,
	"gauges":           FormatSpigoMetrics,
	"graph":            FormatSpigoGraph,
	"services":         FormatSpigoArch,
}

// Keys of a span object that only Zipkin v2 has.
var v2Keys = map[string]bool{
	"localEndpoint": true, "remoteEndpoint": true, "kind": true, "tags": true, "shared": true,
}

// Detect decides the format of an input from its first bytes (up to
// DetectBytes; more is accepted, less when the input is shorter). A UTF-8
// byte order mark and leading whitespace are skipped; gzip data is
// decompressed as far as head goes. head may end anywhere, even inside a
// string: Detect decides from what it holds.
//
//   - A JSON array is Zipkin: v2 when its first object has one of the keys
//     localEndpoint, remoteEndpoint, kind, tags or shared, else v1 (an
//     empty array, spigo's empty run, is v1). An array of anything else
//     than objects is unknown.
//   - A JSON object is decided by the first of its top-level keys that is
//     decisive: resourceSpans → OTLP traces, resourceMetrics → OTLP
//     metrics (also snake_case, and for JSON Lines the first line), space
//     → spigo Guesstimate, counters or gauges → old spigo metrics, graph →
//     spigo graph, services → spigo architecture. When head ends before
//     one, a "version" of spigo-… means graph and arch-… architecture.
//
// Anything else is an error wrapping ingest.ErrInvalid:
// `unknown format: "<the first bytes, quoted and clipped>"`, with the keys
// seen for a JSON object.
func Detect(head []byte) (Format, error) {
	if len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(head))
		if err != nil {
			return "", invalidf("unknown format: gzip data: %v", err)
		}
		head, _ = io.ReadAll(io.LimitReader(zr, DetectBytes)) // a truncated stream ends early
		if len(head) == 0 {
			return "", invalidf("unknown format: gzip data too short to decompress its start")
		}
	}
	b := trimHead(head)
	if len(b) == 0 {
		return "", invalidf("unknown format: empty input")
	}
	switch b[0] {
	case '[':
		return detectArray(b)
	case '{':
		return detectObject(b)
	}
	return "", unknownFormat(b, "")
}

// trimHead skips a UTF-8 byte order mark and JSON whitespace.
func trimHead(b []byte) []byte {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	return bytes.TrimLeft(b, " \t\r\n")
}

// unknownFormat is the error for input of no known format.
func unknownFormat(b []byte, detail string) error {
	msg := "unknown format: " + quoteStart(b, 40)
	if detail != "" {
		msg += " (" + detail + ")"
	}
	return invalidf("%s", msg)
}

// quoteStart quotes the first n bytes of b (cut at a rune start), adding
// "…" when b is longer.
func quoteStart(b []byte, n int) string {
	if len(b) <= n {
		return strconv.Quote(string(b))
	}
	cut := n
	for cut > n-utf8.UTFMax && cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return strconv.Quote(string(b[:cut])) + "…"
}

// detectArray decides between Zipkin v1 and v2 from the first element.
func detectArray(b []byte) (Format, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // '['
		return "", unknownFormat(b, "invalid JSON")
	}
	tok, err := dec.Token()
	switch {
	case isTruncation(err):
		return FormatZipkinV1, nil // "[" and nothing more yet
	case err != nil:
		return "", unknownFormat(b, "a JSON array of invalid JSON")
	}
	switch tok {
	case json.Delim(']'):
		return FormatZipkinV1, nil
	case json.Delim('{'):
	default:
		return "", unknownFormat(b, "a JSON array of "+describeToken(tok)+"s, not of span objects")
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			if isTruncation(err) {
				return FormatZipkinV1, nil
			}
			return "", unknownFormat(b, "a JSON array of invalid JSON")
		}
		key, ok := tok.(string)
		if !ok { // the end of the first object
			return FormatZipkinV1, nil
		}
		switch {
		case v2Keys[key]:
			return FormatZipkinV2, nil
		case key == "binaryAnnotations":
			return FormatZipkinV1, nil
		}
		if err := skipValue(dec); err != nil {
			return FormatZipkinV1, nil // truncated or malformed: the decoder will say where
		}
	}
}

// detectObject decides the format of a JSON object from its keys.
func detectObject(b []byte) (Format, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	_, _ = dec.Token() // '{'
	var keys []string
	version := ""
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		key, ok := tok.(string)
		if !ok {
			break
		}
		if f, ok := objectKeys[key]; ok {
			return f, nil
		}
		if key == "resourceLogs" || key == "resource_logs" {
			return "", unknownFormat(b, "OTLP/JSON logs, which are not imported")
		}
		if len(keys) < 6 {
			keys = append(keys, strconv.Quote(clip(key)))
		}
		if key == "version" {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			if s, ok := tok.(string); ok {
				version = s
				continue
			}
			if d, ok := tok.(json.Delim); ok && (d == '{' || d == '[') {
				if err := skipRest(dec); err != nil {
					break
				}
			}
			continue
		}
		if err := skipValue(dec); err != nil {
			break
		}
	}
	switch {
	case strings.HasPrefix(version, "spigo-"):
		return FormatSpigoGraph, nil
	case strings.HasPrefix(version, "arch-"):
		return FormatSpigoArch, nil
	}
	detail := "a JSON object without a known key"
	if len(keys) > 0 {
		detail = "a JSON object with keys " + strings.Join(keys, ", ")
	}
	if slices.Contains(keys, `"traceId"`) {
		detail += "; a Zipkin file is an array of spans"
	}
	return "", unknownFormat(b, detail)
}

// skipValue reads one JSON value from dec.
func skipValue(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); ok && (d == '{' || d == '[') {
		return skipRest(dec)
	}
	return nil
}

// skipRest reads up to the end of the object or array just opened.
func skipRest(dec *json.Decoder) error {
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}

// isTruncation reports whether a decoder error means the input ended.
func isTruncation(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// describeToken names the JSON type of a token.
func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "array"
		}
		return "object"
	case string:
		return "string"
	case float64, json.Number:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

// clip shortens s for error messages.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// ParseRebase reads a rebase setting: "" (none), "now", or an RFC 3339
// time the latest time of the file is moved to.
func ParseRebase(s string, now time.Time) (time.Time, error) {
	switch s {
	case "":
		return time.Time{}, nil
	case "now":
		return now, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid rebase %q: want now or an RFC 3339 time", s)
	}
	return t, nil
}
