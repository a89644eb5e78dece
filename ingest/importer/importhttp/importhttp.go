// Package importhttp serves file imports over HTTP (POST /api/v1/import,
// docs/import.md): the upload — the raw body, or the first file of a
// multipart/form-data body — is spooled to a file, then imported with
// package importer into a Sink, one upload at a time. Uploads get read
// deadlines that follow their progress, so a stalled or trickling client
// frees the import slot.
package importhttp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/ingest/importer"
)

// Path is the URL path of the upload endpoint on the HTTP port.
const Path = "/api/v1/import"

// Options configure the upload handler.
type Options struct {
	// Sink receives the imported data (storesink.New(db)). Required.
	Sink importer.Sink
	// MaxBytes limits the size of an upload (max_import_bytes). Required.
	MaxBytes int64
	// SpoolDir is the directory uploads are spooled to; it must exist
	// (CleanSpools creates it). Required.
	SpoolDir string
	// Logger receives the handler's and the importer's log lines. Nil
	// discards them.
	Logger *slog.Logger
	// Upload deadlines. An upload must keep moving: each ProgressBytes
	// received push its read deadline StallTimeout ahead, so that a client
	// that stalls (or trickles) frees the import slot within StallTimeout.
	// The whole upload must also average MinRate bytes per second: it gets
	// StallTimeout plus its size (Content-Length, else MaxBytes) at that
	// rate. Zero values take the defaults: 30 s, 64 KiB and 256 KiB/s.
	StallTimeout  time.Duration
	ProgressBytes int64
	MinRate       int64
}

// Default upload deadlines (Options).
const (
	DefaultStallTimeout        = 30 * time.Second
	DefaultProgressBytes int64 = 64 << 10
	DefaultMinRate       int64 = 256 << 10 // bytes per second
)

// handler serves POST Path.
type handler struct {
	opts   Options
	logger *slog.Logger  // scoped with component=import
	base   *slog.Logger  // unscoped: the importer adds component=importer
	busy   chan struct{} // holds a token while an upload or import runs
}

// NewHandler returns the upload handler.
func NewHandler(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	if o.ProgressBytes <= 0 {
		o.ProgressBytes = DefaultProgressBytes
	}
	if o.MinRate <= 0 {
		o.MinRate = DefaultMinRate
	}
	return &handler{opts: o, logger: o.Logger.With("component", "import"), base: o.Logger, busy: make(chan struct{}, 1)}
}

// SpoolPrefix starts the name of every spool file; CleanSpools removes
// files with this prefix only.
const SpoolPrefix = "flowscope-import-"

// importError is the JSON body of a refused import.
type importError struct {
	Error string `json:"error"`
	// Summary tells what was read and sent before a failure that happened
	// while sending (nil when nothing was).
	Summary *importer.Summary `json:"summary,omitempty"`
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	opts, name, err := importOptions(r)
	if err != nil {
		writeImportJSON(w, http.StatusBadRequest, importError{Error: err.Error()})
		return
	}
	select {
	case h.busy <- struct{}{}:
		defer func() { <-h.busy }()
	default:
		w.Header().Set("Retry-After", "5")
		writeImportJSON(w, http.StatusTooManyRequests, importError{Error: "another import is running; retry when it is done"})
		return
	}
	// An upload of a large file outlasts the server's read timeout: it
	// gets deadlines that follow its progress instead.
	rc := http.NewResponseController(w)
	dr := h.newDeadlineReader(r.Body, rc, r.ContentLength)
	r.Body = dr
	if err := dr.extend(); err != nil {
		writeImportJSON(w, http.StatusInternalServerError, importError{Error: fmt.Sprintf("set upload deadline: %v", err)})
		return
	}
	// stalled answers 408 when the upload failed by its deadline.
	stalled := func(name string) bool {
		if !dr.timedOut {
			return false
		}
		w.Header().Set("Connection", "close")
		writeImportJSON(w, http.StatusRequestTimeout, importError{Error: fmt.Sprintf("upload of %s %s; send it again (or import it with the collector import command)", name, dr.reason())})
		h.logger.Warn("upload timed out", "file", name, "bytes", dr.n, "reason", dr.reason())
		return true
	}
	body, partName, err := uploadBody(r)
	if err != nil {
		if stalled("upload") {
			return
		}
		writeImportJSON(w, http.StatusBadRequest, importError{Error: err.Error()})
		return
	}
	if name == "" {
		name = partName
	}
	if name == "" {
		name = "upload"
	}
	// Refuse an upload of unknown format from its first bytes, without
	// spooling the rest.
	br := bufio.NewReaderSize(body, importer.DetectBytes)
	if opts.Format == "" {
		head, err := br.Peek(importer.DetectBytes)
		if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
			if stalled(name) {
				return
			}
			writeImportJSON(w, http.StatusBadRequest, importError{Error: fmt.Sprintf("read upload of %s: %v", name, err)})
			return
		}
		if _, err := importer.Detect(head); err != nil {
			writeImportJSON(w, http.StatusBadRequest, importError{Error: fmt.Sprintf("import %s: %v", name, err)})
			return
		}
	}
	tmp, size, err := spool(br, h.opts.SpoolDir, h.opts.MaxBytes)
	if tmp != "" {
		defer func() {
			if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
				h.logger.Warn("remove spool", "err", err)
			}
		}()
	}
	if stalled(name) {
		return
	}
	// The upload is read: no deadline while importing (an expired one
	// would cancel the request's context).
	_ = rc.SetReadDeadline(time.Time{})
	switch {
	case errors.Is(err, errTooLarge):
		writeImportJSON(w, http.StatusRequestEntityTooLarge, importError{Error: fmt.Sprintf("upload of %s exceeds max_import_bytes (%d bytes); import it with the collector import command instead", name, h.opts.MaxBytes)})
		return
	case err != nil:
		writeImportJSON(w, http.StatusBadRequest, importError{Error: fmt.Sprintf("read upload of %s: %v", name, err)})
		return
	}
	in := importer.Input{Name: name, Size: size, Open: func() (io.ReadCloser, error) { return os.Open(tmp) }}
	opts.Logger = h.base // not h.logger: one component key per line
	sum, err := importer.Import(r.Context(), in, h.opts.Sink, opts)
	if err == nil && sum.AlreadyImported {
		h.logger.Info("upload already imported, skipped", "file", name, "imported", sum.Previous.Updated)
	}
	if err != nil {
		status := http.StatusInternalServerError
		switch {
		case errors.Is(err, ingest.ErrInvalid):
			status = http.StatusBadRequest
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, ingest.ErrUnavailable):
			status = http.StatusServiceUnavailable
		}
		var sp *importer.Summary
		if sum.Requests > 0 {
			sp = &sum
		}
		h.logger.Warn("import failed", "file", name, "status", status, "err", err)
		writeImportJSON(w, status, importError{Error: err.Error(), Summary: sp})
		return
	}
	writeImportJSON(w, http.StatusOK, sum)
}

// importOptions reads the query parameters: name, format, rebase (now or
// an RFC 3339 time), arch and force (true or false).
func importOptions(r *http.Request) (importer.Options, string, error) {
	var opts importer.Options
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "name", "format", "rebase", "arch", "force":
		default:
			return opts, "", fmt.Errorf("unknown parameter %q (want name, format, rebase, arch or force)", k)
		}
	}
	if f := q.Get("force"); f != "" {
		force, err := strconv.ParseBool(f)
		if err != nil {
			return opts, "", fmt.Errorf("invalid force %q: want true or false", f)
		}
		opts.Force = force
	}
	if f := q.Get("format"); f != "" {
		pf, err := importer.ParseFormat(f)
		if err != nil {
			return opts, "", err
		}
		opts.Format = pf
	}
	rebase, err := importer.ParseRebase(q.Get("rebase"), time.Now())
	if err != nil {
		return opts, "", err
	}
	opts.Rebase = rebase
	opts.ArchName = q.Get("arch")
	return opts, uploadName(q.Get("name")), nil
}

// uploadName is the file name of ?name=: its last path element, or ""
// when it has none (filepath.Base would make "" and "/" into "." and "/").
func uploadName(s string) string {
	switch b := filepath.Base(s); b {
	case ".", "/", `\`, "..":
		return ""
	default:
		return b
	}
}

// uploadBody returns the uploaded file: the first file part of a
// multipart/form-data body (with its file name), else the body itself.
func uploadBody(r *http.Request) (io.Reader, string, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return r.Body, "", nil
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, "", errors.New("multipart upload without a file part")
		}
		if err != nil {
			return nil, "", fmt.Errorf("read multipart upload: %w", err)
		}
		if p.FileName() != "" {
			return p, filepath.Base(p.FileName()), nil
		}
	}
}

var errTooLarge = errors.New("upload too large")

// spool copies r to a new file in dir, at most max bytes, and returns its
// path (to remove, also on error) and size.
func spool(r io.Reader, dir string, max int64) (string, int64, error) {
	f, err := os.CreateTemp(dir, SpoolPrefix+"*")
	if err != nil {
		return "", 0, fmt.Errorf("spool upload: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(r, max+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > max {
		err = errTooLarge
	}
	return f.Name(), n, err
}

func writeImportJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// deadlineReader reads an upload body, pushing the connection's read
// deadline ahead as the upload progresses (see Options.StallTimeout).
type deadlineReader struct {
	opts     *Options
	r        io.ReadCloser
	rc       *http.ResponseController
	limit    time.Time // the deadline of the whole upload
	n        int64     // bytes read
	since    int64     // bytes read since the deadline was last pushed
	timedOut bool      // a read failed by the deadline
}

func (h *handler) newDeadlineReader(r io.ReadCloser, rc *http.ResponseController, contentLength int64) *deadlineReader {
	size := h.opts.MaxBytes
	if contentLength > 0 && contentLength < size {
		size = contentLength
	}
	allow := h.opts.StallTimeout + time.Duration(float64(size)/float64(h.opts.MinRate)*float64(time.Second))
	return &deadlineReader{opts: &h.opts, r: r, rc: rc, limit: time.Now().Add(allow)}
}

// extend sets the read deadline StallTimeout ahead, at most to the
// deadline of the whole upload.
func (d *deadlineReader) extend() error {
	dl := time.Now().Add(d.opts.StallTimeout)
	if dl.After(d.limit) {
		dl = d.limit
	}
	if err := d.rc.SetReadDeadline(dl); err != nil {
		return fmt.Errorf("set read deadline: %w", err)
	}
	return nil
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.n += int64(n)
	d.since += int64(n)
	if d.since >= d.opts.ProgressBytes {
		d.since = 0
		if xerr := d.extend(); xerr != nil && err == nil {
			err = xerr
		}
	}
	if err != nil && isTimeout(err) {
		d.timedOut = true
	}
	return n, err
}

func (d *deadlineReader) Close() error { return d.r.Close() }

// reason says which deadline ended the upload.
func (d *deadlineReader) reason() string {
	if !time.Now().Before(d.limit) {
		return fmt.Sprintf("was slower than %d KiB/s on average (%d bytes received)", d.opts.MinRate>>10, d.n)
	}
	return fmt.Sprintf("stalled: less than %d KiB in %s (%d bytes received)", d.opts.ProgressBytes>>10, d.opts.StallTimeout, d.n)
}

// isTimeout reports whether err is a read deadline's.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout() || strings.Contains(err.Error(), "i/o timeout")
}

// CleanSpools creates dir (the spool directory) and removes the spool
// files left in it by a collector that died importing: files named
// SpoolPrefix… last modified before start. It also removes those that
// older versions left in the system temporary directory, when untouched
// for a day. It logs what it removed.
func CleanSpools(dir string, start time.Time, logger *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create spool directory: %w", err)
	}
	clean := func(dir string, before time.Time) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			logger.Warn("list spool directory", "dir", dir, "err", err)
			return
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), SpoolPrefix) {
				continue
			}
			fi, err := e.Info()
			if err != nil || !fi.ModTime().Before(before) {
				continue
			}
			path := filepath.Join(dir, e.Name())
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				logger.Warn("remove stale import spool", "path", path, "err", err)
				continue
			}
			logger.Info("removed stale import spool", "path", path, "bytes", fi.Size(), "modified", fi.ModTime())
		}
	}
	clean(dir, start)
	clean(os.TempDir(), start.Add(-24*time.Hour))
	return nil
}
