package otlphttp

import (
	"compress/gzip"
	"errors"
	"io"
	"sync"
)

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
