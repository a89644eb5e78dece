package zipkin

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Limits of the JSON scanner. They bound the memory one token can take, so
// that garbage (a 1 GB string, a bottomless nesting) fails early instead of
// being read whole.
const (
	maxStringBytes = 1 << 20  // longest string, decoded
	maxNumberBytes = 64       // longest number literal
	maxSkipDepth   = 128      // deepest nesting inside an unknown member
	maxObjectBytes = 32 << 20 // longest span object, with the separator before it
	scanBufferSize = 64 << 10
)

// errObjectTooLarge stops a streaming scanner that read more than
// maxObjectBytes since its mark.
var errObjectTooLarge = errors.New("span object too large")

// scanner is a small streaming JSON tokenizer that knows the byte offset of
// everything it reads. The decoders drive it member by member, so a span is
// read straight into its Go form without an intermediate tree, and every
// error can name its position.
//
// A scanner reads either from an io.Reader through a fixed buffer or from a
// byte slice it does not copy. Byte slices it returns (strings, keys) are
// valid only until the next call.
type scanner struct {
	r    io.Reader
	buf  []byte
	pos  int   // next unread byte in buf
	end  int   // end of the valid bytes in buf
	base int64 // input offset of buf[0]
	rerr error // sticky read error; io.EOF at the end of the input

	mark int64 // offset the object size limit counts from; -1: no limit

	scratch []byte // strings that cross a refill or hold escapes
	key     []byte // the current member name (see nextKey)
	num     [maxNumberBytes]byte
}

func newScanner(r io.Reader) *scanner {
	return &scanner{r: r, buf: make([]byte, scanBufferSize), mark: -1}
}

func newBytesScanner(b []byte) *scanner {
	return &scanner{buf: b, end: len(b), rerr: io.EOF, mark: -1}
}

// parseError is a syntax or schema error at a byte offset, with the path of
// the member inside the span object (built while the error travels up).
type parseError struct {
	off  int64
	path string
	msg  string
}

func (e *parseError) Error() string {
	if e.path == "" {
		return fmt.Sprintf("at byte %d: %s", e.off, e.msg)
	}
	return fmt.Sprintf("at byte %d: %q: %s", e.off, e.path, e.msg)
}

// readError is a failure of the underlying reader (not of the input).
type readError struct {
	off int64
	err error
}

func (e *readError) Error() string { return fmt.Sprintf("read input at byte %d: %v", e.off, e.err) }
func (e *readError) Unwrap() error { return e.err }

// inField prefixes the path of a parseError with a member name.
func inField(err error, name string) error {
	if pe, ok := err.(*parseError); ok {
		switch {
		case pe.path == "":
			pe.path = name
		case pe.path[0] == '[':
			pe.path = name + pe.path
		default:
			pe.path = name + "." + pe.path
		}
	}
	return err
}

// inElem prefixes the path of a parseError with an array index.
func inElem(err error, i int) error {
	if pe, ok := err.(*parseError); ok {
		idx := "[" + strconv.Itoa(i) + "]"
		switch {
		case pe.path == "":
			pe.path = idx
		case pe.path[0] == '[':
			pe.path = idx + pe.path
		default:
			pe.path = idx + "." + pe.path
		}
	}
	return err
}

func (s *scanner) errAt(off int64, format string, args ...any) *parseError {
	return &parseError{off: off, msg: fmt.Sprintf(format, args...)}
}

// offset is the input offset of the next unread byte.
func (s *scanner) offset() int64 { return s.base + int64(s.pos) }

// fill replaces the consumed buffer with new input. It returns false at
// the end of the input or on a read error (see eofErr).
func (s *scanner) fill() bool {
	if s.rerr != nil {
		return false
	}
	s.base += int64(s.end)
	s.pos, s.end = 0, 0
	if s.mark >= 0 && s.base-s.mark > maxObjectBytes {
		s.rerr = errObjectTooLarge
		return false
	}
	for empty := 0; ; empty++ {
		n, err := s.r.Read(s.buf)
		s.end = n
		if err != nil {
			s.rerr = err
		}
		if n > 0 {
			return true
		}
		if err != nil {
			return false
		}
		if empty == 100 {
			s.rerr = io.ErrNoProgress
			return false
		}
	}
}

// eofErr is the error for input that ended (or failed) too early.
func (s *scanner) eofErr() error {
	switch s.rerr {
	case io.EOF:
		return s.errAt(s.offset(), "unexpected end of input")
	case errObjectTooLarge:
		return s.errAt(s.offset(), "span object (with the separator before it) longer than %d bytes", maxObjectBytes)
	}
	return &readError{off: s.offset(), err: s.rerr}
}

// skipWS skips white space and returns the next byte without consuming it.
func (s *scanner) skipWS() (byte, error) {
	for {
		for s.pos < s.end {
			switch c := s.buf[s.pos]; c {
			case ' ', '\t', '\n', '\r':
				s.pos++
			default:
				return c, nil
			}
		}
		if !s.fill() {
			return 0, s.eofErr()
		}
	}
}

// atEOF reports whether only white space is left. It returns a readError
// if the reader fails.
func (s *scanner) atEOF() (bool, error) {
	if _, err := s.skipWS(); err != nil {
		if _, ok := err.(*parseError); ok {
			return true, nil
		}
		return false, err
	}
	return false, nil
}

// cur is the byte at the current position; the caller has peeked it.
func (s *scanner) cur() byte { return s.buf[s.pos] }

// describe names the JSON value starting with c, for error messages.
func describe(c byte) string {
	switch {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "bool"
	case c == 'n':
		return "null"
	case c == '-' || c >= '0' && c <= '9':
		return "number"
	case c >= 0x20 && c < 0x7f:
		return fmt.Sprintf("invalid character %q", c)
	}
	return fmt.Sprintf("invalid byte 0x%02x", c)
}

// typeErr is the error for a value of the wrong JSON type at the current
// position.
func (s *scanner) typeErr(want string) error {
	return s.errAt(s.offset(), "want %s, got %s", want, describe(s.cur()))
}

// nextKey advances to the next member of the object whose '{' was
// consumed (first) or whose previous member value was read. It returns the
// member name (valid until the value is read further than its first byte
// is peeked) and positions the scanner at the value's first byte; ok is
// false at the closing '}', which it consumes.
func (s *scanner) nextKey(first bool) (key []byte, ok bool, err error) {
	c, err := s.skipWS()
	if err != nil {
		return nil, false, err
	}
	if !first {
		switch c {
		case ',':
			s.pos++
			if c, err = s.skipWS(); err != nil {
				return nil, false, err
			}
			if c != '"' {
				return nil, false, s.errAt(s.offset(), "want a member name after ',', got %s", describe(c))
			}
		case '}':
			s.pos++
			return nil, false, nil
		default:
			return nil, false, s.errAt(s.offset(), "want ',' or '}' after an object member, got %s", describe(c))
		}
	} else if c == '}' {
		s.pos++
		return nil, false, nil
	} else if c != '"' {
		return nil, false, s.errAt(s.offset(), "want a member name or '}', got %s", describe(c))
	}
	k, err := s.readString()
	if err != nil {
		return nil, false, err
	}
	s.key = append(s.key[:0], k...) // the buffer may be refilled below
	if c, err = s.skipWS(); err != nil {
		return nil, false, err
	}
	if c != ':' {
		return nil, false, s.errAt(s.offset(), "want ':' after member name %q, got %s", s.key, describe(c))
	}
	s.pos++
	if _, err = s.skipWS(); err != nil {
		return nil, false, err
	}
	return s.key, true, nil
}

// nextElem advances to the next element of the array whose '[' was
// consumed (first) or whose previous element was read, and positions the
// scanner at its first byte; ok is false at the closing ']', which it
// consumes.
func (s *scanner) nextElem(first bool) (ok bool, err error) {
	c, err := s.skipWS()
	if err != nil {
		return false, err
	}
	if first {
		if c == ']' {
			s.pos++
			return false, nil
		}
		return true, nil
	}
	switch c {
	case ',':
		s.pos++
		if c, err = s.skipWS(); err != nil {
			return false, err
		}
		if c == ']' {
			return false, s.errAt(s.offset(), "want a value after ',', got ']'")
		}
		return true, nil
	case ']':
		s.pos++
		return false, nil
	}
	return false, s.errAt(s.offset(), "want ',' or ']' after an array element, got %s", describe(c))
}

// readString reads the string at the current position (at its '"'). The
// result is valid UTF-8 (invalid bytes become U+FFFD, as encoding/json
// does) and valid until the next call.
func (s *scanner) readString() ([]byte, error) {
	start := s.offset()
	s.pos++
	// Fast path: no escape and no refill.
	i := s.pos
	ascii := true
	for i < s.end {
		c := s.buf[i]
		if plainASCII[c] {
			i++
			continue
		}
		if c == '"' {
			b := s.buf[s.pos:i]
			s.pos = i + 1
			if len(b) > maxStringBytes {
				return nil, s.errAt(start, "string longer than %d bytes", maxStringBytes)
			}
			if ascii {
				return b, nil
			}
			return s.validUTF8(b), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		ascii = false
		i++
	}
	s.scratch = append(s.scratch[:0], s.buf[s.pos:i]...)
	s.pos = i
	for {
		if len(s.scratch) > maxStringBytes {
			return nil, s.errAt(start, "string longer than %d bytes", maxStringBytes)
		}
		if s.pos >= s.end && !s.fill() {
			if s.rerr == io.EOF {
				return nil, s.errAt(s.offset(), "unexpected end of input in the string starting at byte %d", start)
			}
			return nil, s.eofErr()
		}
		c := s.buf[s.pos]
		switch {
		case c == '"':
			s.pos++
			b := s.validUTF8(s.scratch)
			return b, nil
		case c == '\\':
			if err := s.readEscape(); err != nil {
				return nil, err
			}
		case c < 0x20:
			return nil, s.errAt(s.offset(), "control character 0x%02x in string", c)
		default:
			j := s.pos + 1
			for j < s.end {
				if c := s.buf[j]; c == '"' || c == '\\' || c < 0x20 {
					break
				}
				j++
			}
			s.scratch = append(s.scratch, s.buf[s.pos:j]...)
			s.pos = j
		}
	}
}

// plainASCII marks the bytes a string's fast path copies as they are:
// ASCII other than control characters, '"' and '\\'.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// validUTF8 returns b, or a copy in scratch with invalid bytes replaced.
func (s *scanner) validUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	fixed := strings.ToValidUTF8(string(b), "\uFFFD")
	s.scratch = append(s.scratch[:0], fixed...)
	return s.scratch
}

// nextByte consumes one byte of a string escape.
func (s *scanner) nextByte() (byte, error) {
	if s.pos >= s.end && !s.fill() {
		return 0, s.eofErr()
	}
	c := s.buf[s.pos]
	s.pos++
	return c, nil
}

// readEscape decodes the escape at the current position (at its '\')
// into scratch.
func (s *scanner) readEscape() error {
	off := s.offset()
	s.pos++ // '\'
	c, err := s.nextByte()
	if err != nil {
		return err
	}
	if c != 'u' {
		return s.simpleEscape(c, off)
	}
	r, err := s.hex4(off)
	if err != nil {
		return err
	}
	for {
		if !utf16.IsSurrogate(r) {
			s.scratch = utf8.AppendRune(s.scratch, r)
			return nil
		}
		// A surrogate must be a high one followed by an escaped low one;
		// anything else becomes U+FFFD, as in encoding/json.
		if s.pos >= s.end && !s.fill() {
			s.scratch = utf8.AppendRune(s.scratch, utf8.RuneError)
			return nil // the string loop reports the end of input
		}
		if s.buf[s.pos] != '\\' {
			s.scratch = utf8.AppendRune(s.scratch, utf8.RuneError)
			return nil
		}
		off2 := s.offset()
		s.pos++
		c, err := s.nextByte()
		if err != nil {
			return err
		}
		if c != 'u' {
			s.scratch = utf8.AppendRune(s.scratch, utf8.RuneError)
			return s.simpleEscape(c, off2)
		}
		r2, err := s.hex4(off2)
		if err != nil {
			return err
		}
		if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
			s.scratch = utf8.AppendRune(s.scratch, dec)
			return nil
		}
		s.scratch = utf8.AppendRune(s.scratch, utf8.RuneError)
		r = r2
	}
}

// simpleEscape appends the character of the one-letter escape '\c'.
func (s *scanner) simpleEscape(c byte, off int64) error {
	switch c {
	case '"', '\\', '/':
		s.scratch = append(s.scratch, c)
	case 'b':
		s.scratch = append(s.scratch, '\b')
	case 'f':
		s.scratch = append(s.scratch, '\f')
	case 'n':
		s.scratch = append(s.scratch, '\n')
	case 'r':
		s.scratch = append(s.scratch, '\r')
	case 't':
		s.scratch = append(s.scratch, '\t')
	default:
		return s.errAt(off, "invalid escape %q in string", []byte{'\\', c})
	}
	return nil
}

// hex4 reads the four hex digits of a \u escape.
func (s *scanner) hex4(off int64) (rune, error) {
	var r rune
	for range 4 {
		c, err := s.nextByte()
		if err != nil {
			return 0, err
		}
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, s.errAt(off, "invalid \\u escape in string")
		}
		r = r<<4 | rune(v)
	}
	return r, nil
}

// readNumber reads the number literal at the current position, checking
// the JSON grammar, and returns its text (valid until the next call).
func (s *scanner) readNumber() ([]byte, error) {
	start := s.offset()
	n := 0
	peek := func() (byte, bool) {
		if s.pos >= s.end && !s.fill() {
			return 0, false
		}
		return s.buf[s.pos], true
	}
	take := func(c byte) error {
		if n == len(s.num) {
			return s.errAt(start, "number longer than %d characters", maxNumberBytes)
		}
		s.num[n] = c
		n++
		s.pos++
		return nil
	}
	digits := func() (int, error) {
		k := 0
		for {
			c, ok := peek()
			if !ok || c < '0' || c > '9' {
				return k, nil
			}
			if err := take(c); err != nil {
				return k, err
			}
			k++
		}
	}
	bad := func() error {
		if s.rerr != nil && s.rerr != io.EOF {
			return s.eofErr()
		}
		return s.errAt(start, "invalid number %q", s.num[:n])
	}
	c, _ := peek()
	if c == '-' {
		if err := take(c); err != nil {
			return nil, err
		}
	}
	c, ok := peek()
	switch {
	case ok && c == '0':
		if err := take(c); err != nil {
			return nil, err
		}
	case ok && c >= '1' && c <= '9':
		if _, err := digits(); err != nil {
			return nil, err
		}
	default:
		return nil, bad()
	}
	if c, ok := peek(); ok && c == '.' {
		if err := take(c); err != nil {
			return nil, err
		}
		if k, err := digits(); err != nil {
			return nil, err
		} else if k == 0 {
			return nil, bad()
		}
	}
	if c, ok := peek(); ok && (c == 'e' || c == 'E') {
		if err := take(c); err != nil {
			return nil, err
		}
		if c, ok := peek(); ok && (c == '+' || c == '-') {
			if err := take(c); err != nil {
				return nil, err
			}
		}
		if k, err := digits(); err != nil {
			return nil, err
		} else if k == 0 {
			return nil, bad()
		}
	}
	if s.rerr != nil && s.rerr != io.EOF && s.pos >= s.end {
		return nil, s.eofErr()
	}
	return s.num[:n], nil
}

// readLiteral reads true, false or null at the current position.
func (s *scanner) readLiteral() (byte, error) {
	off := s.offset()
	c := s.cur()
	var want string
	switch c {
	case 't':
		want = "true"
	case 'f':
		want = "false"
	case 'n':
		want = "null"
	default:
		return 0, s.errAt(off, "want a value, got %s", describe(c))
	}
	for i := range len(want) {
		b, err := s.nextByte()
		if err != nil {
			return 0, err
		}
		if b != want[i] {
			return 0, s.errAt(off, "invalid literal, want %s", want)
		}
	}
	return c, nil
}

// skipValue reads and discards the value at the current position.
func (s *scanner) skipValue(depth int) error {
	c, err := s.skipWS()
	if err != nil {
		return err
	}
	switch {
	case c == '{' || c == '[':
		if depth >= maxSkipDepth {
			return s.errAt(s.offset(), "nested deeper than %d levels", maxSkipDepth)
		}
		s.pos++
		for first := true; ; first = false {
			var ok bool
			if c == '{' {
				_, ok, err = s.nextKey(first)
			} else {
				ok, err = s.nextElem(first)
			}
			if err != nil || !ok {
				return err
			}
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
		}
	case c == '"':
		_, err = s.readString()
		return err
	case c == 't' || c == 'f' || c == 'n':
		_, err = s.readLiteral()
		return err
	case c == '-' || c >= '0' && c <= '9':
		_, err = s.readNumber()
		return err
	}
	return s.errAt(s.offset(), "want a value, got %s", describe(c))
}

// isNull consumes a null at the current position and reports whether there
// was one.
func (s *scanner) isNull() (bool, error) {
	if s.cur() != 'n' {
		return false, nil
	}
	_, err := s.readLiteral()
	return err == nil, err
}

// str reads a string value; present is false for null.
func (s *scanner) str(want string) (b []byte, present bool, err error) {
	if null, err := s.isNull(); null || err != nil {
		return nil, false, err
	}
	if s.cur() != '"' {
		return nil, false, s.typeErr(want)
	}
	b, err = s.readString()
	return b, err == nil, err
}

// maxMicros is the largest timestamp or duration in microseconds whose
// nanoseconds fit an int64 (year 2262).
const maxMicros = math.MaxInt64 / 1000

// micros reads a non-negative number of microseconds (null reads as 0).
// Fractions are truncated.
func (s *scanner) micros() (int64, error) {
	if null, err := s.isNull(); null || err != nil {
		return 0, err
	}
	c := s.cur()
	if c != '-' && (c < '0' || c > '9') {
		return 0, s.typeErr("a number of microseconds")
	}
	off := s.offset()
	num, err := s.readNumber()
	if err != nil {
		return 0, err
	}
	var v int64
	integral := true
	for _, d := range num {
		if d < '0' || d > '9' {
			integral = false
			break
		}
		if v > (maxMicros-int64(d-'0'))/10 {
			return 0, s.errAt(off, "%s microseconds is out of range (after year 2262)", num)
		}
		v = v*10 + int64(d-'0')
	}
	if integral {
		return v, nil
	}
	f, err := strconv.ParseFloat(string(num), 64)
	switch {
	case num[0] == '-' && f != 0:
		return 0, s.errAt(off, "want a non-negative number of microseconds, got %s", num)
	case err != nil || f >= maxMicros:
		return 0, s.errAt(off, "%s microseconds is out of range (after year 2262)", num)
	}
	return int64(f), nil
}

// port reads a port number 0..65535 (null reads as 0).
func (s *scanner) port() (int, error) {
	if null, err := s.isNull(); null || err != nil {
		return 0, err
	}
	c := s.cur()
	if c != '-' && (c < '0' || c > '9') {
		return 0, s.typeErr("a port number")
	}
	off := s.offset()
	num, err := s.readNumber()
	if err != nil {
		return 0, err
	}
	p, err := strconv.Atoi(string(num))
	if err != nil || p < 0 || p > 65535 {
		return 0, s.errAt(off, "want a port number from 0 to 65535, got %s", num)
	}
	return p, nil
}

// boolean reads a bool value (null reads as false).
func (s *scanner) boolean() (bool, error) {
	switch s.cur() {
	case 't', 'f', 'n':
		c, err := s.readLiteral()
		return c == 't', err
	}
	return false, s.typeErr("a bool")
}

// hexID reads an ID string into dst (len 8 or 16). wide says whether 32
// digits are allowed (trace IDs); 16 digits then fill dst[8:]. A null or
// empty string reports present false.
func (s *scanner) hexID(dst []byte, wide bool) (present bool, err error) {
	want := "16 hex digits"
	if wide {
		want = "16 or 32 hex digits"
	}
	off := s.offset()
	b, _, err := s.str("a string of " + want)
	if err != nil || len(b) == 0 {
		return false, err
	}
	clear(dst)
	switch {
	case len(b) == 16 && len(dst) == 16:
		dst = dst[8:]
	case len(b) == 2*len(dst):
	default:
		return false, s.errAt(off, "want %s, got %d", want, len(b))
	}
	zero := true
	for i := range dst {
		hi, ok1 := unhex(b[2*i])
		lo, ok2 := unhex(b[2*i+1])
		if !ok1 || !ok2 {
			return false, s.errAt(off, "want hex digits, got %q", b)
		}
		dst[i] = hi<<4 | lo
		if dst[i] != 0 {
			zero = false
		}
	}
	if zero {
		return true, s.errAt(off, errAllZero)
	}
	return true, nil
}

// errAllZero is the message for an all-zero ID.
const errAllZero = "all zero (not a valid ID)"

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
