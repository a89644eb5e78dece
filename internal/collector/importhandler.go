package collector

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
	"time"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/ingest/importer"
	"github.com/flowscope/flowscope/store"
)

// ImportPath is the URL path of the upload endpoint on the HTTP port.
const ImportPath = "/api/v1/import"

// importHandler serves POST /api/v1/import: a file upload (the raw body,
// or the first file of a multipart/form-data body) spooled to a temporary
// file, then imported into the store with package importer, one upload at
// a time. See docs/import.md.
type importHandler struct {
	db       *store.DB
	maxBytes int64
	logger   *slog.Logger
	busy     chan struct{} // holds a token while an import runs
}

func newImportHandler(db *store.DB, maxBytes int64, logger *slog.Logger) http.Handler {
	return &importHandler{db: db, maxBytes: maxBytes, logger: logger.With("component", "import"), busy: make(chan struct{}, 1)}
}

// uploadTimeout bounds the reading of one upload.
const uploadTimeout = time.Hour

// importError is the JSON body of a refused import.
type importError struct {
	Error string `json:"error"`
	// Summary tells what was read and sent before a failure that happened
	// while sending (nil when nothing was).
	Summary *importer.Summary `json:"summary,omitempty"`
}

func (h *importHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	// An upload of a large file outlasts the server's read timeout.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(uploadTimeout))
	body, partName, err := uploadBody(r)
	if err != nil {
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
			writeImportJSON(w, http.StatusBadRequest, importError{Error: fmt.Sprintf("read upload of %s: %v", name, err)})
			return
		}
		if _, err := importer.Detect(head); err != nil {
			writeImportJSON(w, http.StatusBadRequest, importError{Error: fmt.Sprintf("import %s: %v", name, err)})
			return
		}
	}
	tmp, size, err := spool(br, h.maxBytes)
	if tmp != "" {
		defer os.Remove(tmp)
	}
	switch {
	case errors.Is(err, errTooLarge):
		writeImportJSON(w, http.StatusRequestEntityTooLarge, importError{Error: fmt.Sprintf("upload of %s exceeds max_import_bytes (%d bytes); import it with the collector import command instead", name, h.maxBytes)})
		return
	case err != nil:
		writeImportJSON(w, http.StatusBadRequest, importError{Error: fmt.Sprintf("read upload of %s: %v", name, err)})
		return
	}
	in := importer.Input{Name: name, Size: size, Open: func() (io.ReadCloser, error) { return os.Open(tmp) }}
	opts.Logger = h.logger
	sum, err := importer.Import(r.Context(), in, importer.StoreSink(h.db), opts)
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
// an RFC 3339 time) and arch.
func importOptions(r *http.Request) (importer.Options, string, error) {
	var opts importer.Options
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "name", "format", "rebase", "arch":
		default:
			return opts, "", fmt.Errorf("unknown parameter %q (want name, format, rebase or arch)", k)
		}
	}
	if f := q.Get("format"); f != "" {
		pf, err := importer.ParseFormat(f)
		if err != nil {
			return opts, "", err
		}
		opts.Format = pf
	}
	rebase, err := ParseRebase(q.Get("rebase"), time.Now())
	if err != nil {
		return opts, "", err
	}
	opts.Rebase = rebase
	opts.ArchName = q.Get("arch")
	return opts, filepath.Base(q.Get("name")), nil
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

// spool copies r to a temporary file, at most max bytes, and returns its
// path (to remove) and size.
func spool(r io.Reader, max int64) (string, int64, error) {
	f, err := os.CreateTemp("", "flowscope-import-*")
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
