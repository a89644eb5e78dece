package spigo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/flowscope/flowscope/ingest"
)

// invalidf returns an error wrapping ingest.ErrInvalid, for input that
// cannot be decoded. The message should name the problem and its position.
func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ingest.ErrInvalid}, a...)...)
}

// jsonReader reads a JSON document token by token with byte positions in
// its errors. Errors of the underlying reader are returned as they are;
// syntax errors and truncation wrap ingest.ErrInvalid.
type jsonReader struct {
	dec  *json.Decoder
	what string // file kind for error messages, e.g. "spigo graph"
	// inserted is the offset of a byte inserted into the input before
	// decoding (a repair), or -1; error offsets after it are reported in
	// the input as given.
	inserted int64
}

func newJSONReader(r io.Reader, what string) *jsonReader {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	return &jsonReader{dec: dec, what: what, inserted: -1}
}

// pos converts an offset of the decoded input to one of the input as
// given.
func (j *jsonReader) pos(off int64) int64 {
	if j.inserted >= 0 && off > j.inserted {
		return off - 1
	}
	return off
}

// offset is the byte offset of the end of the last token read.
func (j *jsonReader) offset() int64 { return j.dec.InputOffset() }

// nextOffset is the byte offset where the next token probably starts: the
// current offset plus the whitespace, comma and colon bytes the decoder has
// already buffered (a token split across reads is reported at the start of
// the gap).
func (j *jsonReader) nextOffset() int64 {
	off := j.dec.InputOffset()
	var b [64]byte
	buf := j.dec.Buffered()
	for {
		n, _ := buf.Read(b[:])
		if n == 0 {
			return off
		}
		for _, c := range b[:n] {
			switch c {
			case ' ', '\t', '\n', '\r', ',', ':':
				off++
			default:
				return off
			}
		}
	}
}

// errorAt wraps a decoding error err found at byte off: I/O errors keep
// their identity, anything else wraps ingest.ErrInvalid.
func (j *jsonReader) errorAt(off int64, ctx string, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) || errors.Is(err, io.ErrUnexpectedEOF) {
		return invalidf("%s: %s at byte %d: %w", j.what, ctx, j.pos(off), err)
	}
	return fmt.Errorf("%s: %s at byte %d: %w", j.what, ctx, j.pos(off), err)
}

// failf returns an ErrInvalid error for a problem at byte off.
func (j *jsonReader) failf(off int64, format string, a ...any) error {
	return invalidf("%s: %s (byte %d)", j.what, fmt.Sprintf(format, a...), j.pos(off))
}

// token reads the next token; ctx names what was expected.
func (j *jsonReader) token(ctx string) (json.Token, error) {
	off := j.nextOffset()
	t, err := j.dec.Token()
	if err != nil {
		return nil, j.errorAt(off, ctx, err)
	}
	return t, nil
}

// open reads the opening delimiter d ('{' or '[') of ctx. A JSON null is
// accepted as an empty container when nullOK is set; open then reports
// false.
func (j *jsonReader) open(d json.Delim, ctx string, nullOK bool) (bool, error) {
	off := j.nextOffset()
	t, err := j.token(ctx)
	if err != nil {
		return false, err
	}
	if t == nil && nullOK {
		return false, nil
	}
	if t != d {
		return false, j.failf(off, "%s: got %s, want %s", ctx, describe(t), describeDelim(d))
	}
	return true, nil
}

// close reads the closing delimiter of a container whose elements were all
// read (the caller looped while More reported true).
func (j *jsonReader) close(ctx string) error {
	_, err := j.token(ctx)
	return err
}

// key reads an object key.
func (j *jsonReader) key(ctx string) (string, int64, error) {
	off := j.nextOffset()
	t, err := j.token(ctx)
	if err != nil {
		return "", off, err
	}
	k, ok := t.(string)
	if !ok {
		return "", off, j.failf(off, "%s: got %s, want a key", ctx, describe(t))
	}
	return k, off, nil
}

// str reads a string value; null reads as "".
func (j *jsonReader) str(ctx string) (string, error) {
	off := j.nextOffset()
	t, err := j.token(ctx)
	if err != nil {
		return "", err
	}
	switch v := t.(type) {
	case string:
		return v, nil
	case nil:
		return "", nil
	default:
		return "", j.failf(off, "%s: got %s, want a string", ctx, describe(t))
	}
}

// skip skips one value.
func (j *jsonReader) skip(ctx string) error {
	t, err := j.token(ctx)
	if err != nil {
		return err
	}
	return j.skipRest(t, ctx)
}

// skipRest skips the rest of a value whose first token t was read.
func (j *jsonReader) skipRest(t json.Token, ctx string) error {
	d, ok := t.(json.Delim)
	if !ok || d == '}' || d == ']' {
		return nil
	}
	for depth := 1; depth > 0; {
		t, err := j.token(ctx)
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

// end checks that nothing but whitespace follows the document.
func (j *jsonReader) end() error {
	off := j.nextOffset()
	t, err := j.dec.Token()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return j.errorAt(off, "after the document", err)
	}
	return j.failf(off, "unexpected %s after the document", describe(t))
}

// decode decodes the next value into v.
func (j *jsonReader) decode(v any, ctx string) error {
	off := j.nextOffset()
	if err := j.dec.Decode(v); err != nil {
		return j.errorAt(off, ctx, err)
	}
	return nil
}

// describe names a token's JSON type for error messages.
func describe(t json.Token) string {
	switch v := t.(type) {
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return fmt.Sprintf("%q", string(v))
	case string:
		return fmt.Sprintf("string %q", clip(v))
	case json.Number:
		return "number " + clip(string(v))
	case float64:
		return fmt.Sprintf("number %g", v)
	case bool:
		return fmt.Sprintf("%t", v)
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", t)
}

func describeDelim(d json.Delim) string {
	if d == '[' {
		return "an array"
	}
	return "an object"
}

// clip shortens s for error messages.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
