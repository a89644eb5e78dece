package otlphttp

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"sync"
)

// maxPooledBuffer is the capacity above which a buffer is left to the
// garbage collector instead of the pool, so that one huge request does not
// pin its memory for good.
const maxPooledBuffer = 64 << 20

// bufferPool holds the buffers request bodies are read into. The consumer
// does not retain the body after it returns, so a buffer goes back to the
// pool when the request is answered.
var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuffer() *bytes.Buffer { return bufferPool.Get().(*bytes.Buffer) }

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	bufferPool.Put(b)
}

// gzipPool holds gzip readers; each holds about 40 KiB of decompressor state.
var gzipPool sync.Pool

// getGzipReader returns a pooled gzip reader reading r. It reads the gzip
// header, so a body that is not gzip fails here.
func getGzipReader(r io.Reader) (*gzip.Reader, error) {
	if zr, ok := gzipPool.Get().(*gzip.Reader); ok {
		if err := zr.Reset(r); err != nil {
			putGzipReader(zr)
			return nil, err
		}
		return zr, nil
	}
	return gzip.NewReader(r)
}

// putGzipReader returns zr to the pool. It first points zr at an empty
// stream so the pool does not keep the request body reachable.
func putGzipReader(zr *gzip.Reader) {
	_ = zr.Reset(eofReader{}) // fails at once with io.EOF, as intended
	gzipPool.Put(zr)
}

// eofReader is an empty stream. It implements io.ByteReader so that
// gzip.Reader.Reset does not wrap it in a bufio.Reader.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
func (eofReader) ReadByte() (byte, error)  { return 0, io.EOF }

// errTooLarge is returned by a limitReader once its limit is passed.
var errTooLarge = errors.New("body too large")

// limitReader reads at most left+1 bytes from r and fails with errTooLarge
// once more than left bytes were read: unlike io.LimitReader it tells a body
// of exactly the limit from a longer one, and it never reads further, so a
// decompression bomb stops one byte past the limit.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, errTooLarge
	}
	return n, err
}

// exceeded reports whether more than the limit was read.
func (l *limitReader) exceeded() bool { return l.left < 0 }
