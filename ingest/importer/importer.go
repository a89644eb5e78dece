package importer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/ingest/zipkin"
)

// Defaults and limits of Import.
const (
	// DefaultBatchSpans is the most OTLP spans (or metric points) per
	// request when Options.BatchSpans is 0.
	DefaultBatchSpans = zipkin.DefaultBatchSpans
	// DefaultMaxReadBytes is Options.MaxReadBytes when 0: the largest
	// file read whole (spigo Guesstimate, metrics, graph and architecture
	// files, a single OTLP/JSON object) and the longest JSON Lines line.
	DefaultMaxReadBytes = 256 << 20

	// progressInterval is the shortest time between two Progress calls
	// (except the last call of a pass).
	progressInterval = 100 * time.Millisecond
	// retryMin and retryMax bound the wait before repeating a request
	// the sink refused as overloaded or unavailable.
	retryMin = 100 * time.Millisecond
	retryMax = 2 * time.Second
	// maxServices bounds the service names a summary lists.
	maxServices = 10000
	// maxRejectReasons bounds the distinct reasons in Summary.Rejects.
	maxRejectReasons = 32
	// maxWarnings bounds Summary.Warnings.
	maxWarnings = 100
	// keepTraceIDs is the number of recent trace IDs remembered to count
	// distinct traces of OTLP/JSON input.
	keepTraceIDs = 1 << 16
)

// Options configures Import. The zero value detects the format and
// imports without shifting times.
type Options struct {
	// Format is the input's format; "" detects it (see Detect).
	Format Format
	// Rebase, when not zero, shifts every time of the input (span start,
	// end and event times, metric point and exemplar times) by the same
	// amount, so that the latest time in the file equals Rebase. Files
	// without times (Guesstimate and old metrics files) are stamped at
	// Rebase instead of Now.
	Rebase time.Time
	// ArchName names the architecture stored from a spigo graph or
	// architecture file. Default: the "arch" of the file, else the file
	// name without its extension.
	ArchName string
	// BatchSpans is the most OTLP spans (or, for metrics, data points) in
	// one request to the sink; 0 means DefaultBatchSpans. It bounds the
	// memory of streamed formats.
	BatchSpans int
	// MaxReadBytes bounds what is read whole (see DefaultMaxReadBytes);
	// 0 means DefaultMaxReadBytes.
	MaxReadBytes int64
	// Progress, when set, is called from the importing goroutine at most
	// about ten times a second during each pass, and once at the end of
	// each pass. It must not block for long.
	Progress func(Progress)
	// Logger receives the start and end of the import and retries, with
	// the key "file". Default: discard.
	Logger *slog.Logger
	// Now returns the current time: the time of the points of files that
	// have none (Guesstimate and old metrics files, unless Rebase is set),
	// of Architecture.Imported and of import marks. Default time.Now.
	Now func() time.Time
	// Force imports the file from its start even when the sink (a
	// MarkSink) holds a mark of an earlier import of it, done or
	// interrupted: the mark is deleted first. Without Force a done import
	// is skipped (Summary.AlreadyImported) and an interrupted one resumed
	// (see the package documentation, "Resume").
	Force bool
}

func (o *Options) batch() int {
	if o.BatchSpans <= 0 {
		return DefaultBatchSpans
	}
	return min(o.BatchSpans, zipkin.MaxBatchSpans)
}

func (o *Options) maxRead() int64 {
	if o.MaxReadBytes <= 0 {
		return DefaultMaxReadBytes
	}
	return o.MaxReadBytes
}

// Input is the file to import.
type Input struct {
	// Name is the file name, used in messages, in Summary.Name and as the
	// default architecture name.
	Name string
	// Size is the size in bytes as stored (compressed, for gzip input),
	// for progress; -1 when unknown.
	Size int64
	// Open opens the content from its start. Import calls it once per
	// pass and closes what it returns.
	Open func() (io.ReadCloser, error)
}

// FileInput returns the Input of the file at path.
func FileInput(path string) (Input, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Input{}, fmt.Errorf("import input: %w", err)
	}
	if fi.IsDir() {
		return Input{}, fmt.Errorf("import input %s: is a directory", path)
	}
	return Input{
		Name: filepath.Base(path),
		Size: fi.Size(),
		Open: func() (io.ReadCloser, error) { return os.Open(path) },
	}, nil
}

// BytesInput returns an Input reading b, which must not change during the
// import.
func BytesInput(name string, b []byte) Input {
	return Input{
		Name: name,
		Size: int64(len(b)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
	}
}

// Progress reports how far an import got.
type Progress struct {
	// Pass is 1 while the input is read and validated (nothing is sent),
	// 2 while it is sent.
	Pass int `json:"pass"`
	// Bytes is the number of input bytes (as stored) read in this pass.
	Bytes int64 `json:"bytes"`
	// Total is Input.Size (-1 when unknown).
	Total int64 `json:"total"`
	// Spans counts the OTLP spans decoded (pass 1) or sent (pass 2).
	Spans int64 `json:"spans"`
	// Points counts the metric data points decoded or sent.
	Points int64 `json:"points"`
}

// Summary describes an import. Counts come from pass 1 (what the file
// holds); Requests, Retries, SentSpans, SentPoints and Rejected from pass 2
// (what was sent).
type Summary struct {
	// Name is Input.Name.
	Name string `json:"name"`
	// Format is the format read.
	Format Format `json:"format"`
	// Gzip tells whether the input was gzip-compressed.
	Gzip bool `json:"gzip,omitempty"`
	// Bytes is the size of the input as stored.
	Bytes int64 `json:"bytes"`
	// Spans counts the spans of the file: distinct Zipkin spans (an
	// (traceId, id) pair; for Zipkin v1 one span may become a client and
	// a server OTLP span), or OTLP spans.
	Spans int64 `json:"spans"`
	// OTLPSpans counts the OTLP spans built (and sent).
	OTLPSpans int64 `json:"otlpSpans"`
	// Traces counts distinct trace IDs (exact unless one trace's spans
	// are more than 65536 traces apart in the file).
	Traces int64 `json:"traces"`
	// Services lists the distinct service names, sorted: the service.name
	// of the OTLP resources (for spigo names, their service part).
	Services []string `json:"services,omitempty"`
	// UnnamedSpans counts OTLP spans whose resource has no service.name
	// (a Zipkin endpoint with an empty serviceName, like spigo's Hello
	// messages); they are not in Services.
	UnnamedSpans int64 `json:"unnamedSpans,omitempty"`
	// Start and End are the earliest and latest time of the data, after
	// Shift (omitted when the file has none).
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
	// Shift is the amount added to every time (Options.Rebase), in
	// nanoseconds.
	Shift time.Duration `json:"shift"`
	// MetricPoints counts metric data points.
	MetricPoints int64 `json:"metricPoints"`
	// SpigoTraceIDs tells that the file is a spigo flow file whose trace
	// IDs were replaced by IDs unique to this import, spigo's number of
	// each trace kept in the span attribute spigo.trace_id (see
	// AttrSpigoTraceID).
	SpigoTraceIDs bool `json:"spigoTraceIds,omitempty"`
	// Architecture describes the architecture stored from a spigo graph
	// or architecture file.
	Architecture *ArchitectureSummary `json:"architecture,omitempty"`
	// Rejected counts spans and points the sink refused item by item
	// (partial success); Rejects groups them by reason.
	Rejected int64    `json:"rejected"`
	Rejects  []Reject `json:"rejects,omitempty"`
	// Warnings lists what was repaired, skipped or is incomplete.
	Warnings []string `json:"warnings,omitempty"`
	// Requests counts the requests the sink accepted in this import
	// (architectures included; a resumed import does not count those of
	// Previous); Retries the refusals (overloaded, unavailable) that were
	// retried.
	Requests int64 `json:"requests"`
	Retries  int64 `json:"retries,omitempty"`
	// SentSpans and SentPoints count the OTLP spans and points in accepted
	// requests (rejected items included), those stored by the import a
	// resumed import continues (Previous) included. After a complete
	// import they equal OTLPSpans and MetricPoints.
	SentSpans  int64 `json:"sentSpans"`
	SentPoints int64 `json:"sentPoints"`
	// Elapsed is the duration of the import, in nanoseconds.
	Elapsed time.Duration `json:"elapsed"`
	// AlreadyImported tells that the file was imported before (Previous
	// says when) and nothing was sent: the counts are those of pass 1.
	AlreadyImported bool `json:"alreadyImported,omitempty"`
	// Previous is the mark of an earlier import of the same file that
	// this one skipped (AlreadyImported) or resumed after its
	// Previous.Requests requests; nil when there was none (or with
	// Options.Force, or a sink that keeps no marks).
	Previous *Mark `json:"previous,omitempty"`
}

// ArchitectureSummary describes a stored architecture.
type ArchitectureSummary struct {
	Name  string `json:"name"`
	Nodes int    `json:"nodes"`
	Edges int    `json:"edges"`
}

// Reject is a reason the sink gave for refusing items, with the number of
// items refused for it.
type Reject struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// Import reads the file in, checks it whole, then sends it to sink, and
// returns what it read and sent. See the package documentation for the
// formats, the two passes, Rebase and the retries.
//
// An input error (the format is unknown, the file is malformed or too
// large) wraps ingest.ErrInvalid, names the file, the problem and its
// position, and is found before anything is sent. A sink error other than
// overloaded/unavailable stops the import: the error names the request,
// and the Summary tells what was sent before it. A cancelled ctx stops the
// import, also while waiting to retry.
func Import(ctx context.Context, in Input, sink Sink, opts Options) (Summary, error) {
	start := time.Now()
	if in.Name == "" {
		in.Name = "input"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	im := &importer{
		ctx: ctx, in: in, sink: sink, opts: opts,
		log:      opts.Logger.With("component", "importer", "file", in.Name),
		services: make(map[string]struct{}),
		sum:      Summary{Name: in.Name},
	}
	err := im.run()
	im.sum.Elapsed = time.Since(start)
	if errors.Is(err, errAlreadyImported) {
		im.sum.AlreadyImported = true
		im.log.Info("file already imported, nothing sent", "imported", im.sum.Previous.Updated,
			"spans", im.sum.Previous.SentSpans, "points", im.sum.Previous.SentPoints)
		return im.sum, nil
	}
	if err != nil {
		err = fmt.Errorf("import %s: %w", in.Name, err)
		im.log.Info("import failed", "err", err, "requests", im.sum.Requests)
		return im.sum, err
	}
	im.log.Info("import done", "format", im.sum.Format, "spans", im.sum.Spans,
		"points", im.sum.MetricPoints, "requests", im.sum.Requests,
		"rejected", im.sum.Rejected, "elapsed", im.sum.Elapsed)
	return im.sum, nil
}

// importer holds the state of one Import.
type importer struct {
	ctx  context.Context
	in   Input
	sink Sink
	opts Options
	log  *slog.Logger
	sum  Summary

	pass int
	read int64 // input bytes read in this pass

	// Pass 1 findings.
	services   map[string]struct{}
	traceIDs   *recentSet // OTLP/JSON traces only
	minT, maxT int64      // Unix ns, when haveT
	haveT      bool
	shift      int64 // ns added to every time in pass 2

	// Import marks (see resume.go).
	hash           hash.Hash // SHA-256 of the input, pass 1
	src1           *source   // the pass-1 input
	marks          MarkSink  // nil: no marks
	key            []byte
	mark           Mark  // the mark's constant fields
	resumeAfter    int64 // requests stored by the import resumed
	rejectedBefore int64 // items rejected by the import resumed

	// Pass 2.
	spigo   *spigoRewriter // set for a spigo flow file (spigoids.go)
	seq     int64          // requests of pass 2 so far
	scratch []byte
	sendErr error // the error that stopped pass 2, unwrapped by decoders
	rejects map[string]int

	// Progress.
	lastProgress time.Time
	progSpans    int64
	progPoints   int64
}

// source is the content of the input for one pass.
type source struct {
	rc io.ReadCloser
	cr *countReader
	gz *gzip.Reader
	r  *bufio.Reader // the decompressed content
}

func (s *source) Close() error {
	if s.gz != nil {
		s.gz.Close()
	}
	return s.rc.Close()
}

// run imports the input.
func (im *importer) run() error {
	switch {
	case im.in.Open == nil:
		return errors.New("input has no Open function")
	case im.sink == nil:
		return errors.New("nil sink")
	}
	if !im.opts.Rebase.IsZero() {
		if _, err := unixNano(im.opts.Rebase); err != nil {
			return invalidf("rebase: %v", err)
		}
	}
	if _, err := ParseFormat(string(im.opts.Format)); err != nil {
		return err
	}
	im.pass = 1
	im.hash = sha256.New()
	src, err := im.open()
	if err != nil {
		return err
	}
	im.src1 = src
	defer func() { src.Close() }()
	head, err := src.r.Peek(DetectBytes)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read: %w", err)
	}
	format := im.opts.Format
	if format == "" {
		if format, err = Detect(head); err != nil {
			return err
		}
	} else if err := checkStart(format, head); err != nil {
		return err
	}
	im.sum.Format = format
	im.log.Debug("import started", "format", format, "size", im.in.Size, "gzip", im.sum.Gzip)

	switch format {
	case FormatZipkinV1:
		return im.importZipkin(src, zipkin.V1)
	case FormatZipkinV2:
		return im.importZipkin(src, zipkin.V2)
	case FormatOTLPTraces, FormatOTLPMetrics:
		return im.importOTLP(src, format)
	default:
		return im.importSpigo(src, format)
	}
}

// checkStart checks that the input of an explicitly given format starts
// like one, so that garbage fails at its first byte.
func checkStart(f Format, head []byte) error {
	b := trimHead(head)
	if len(b) == 0 {
		return nil // empty: the reader of the format says so
	}
	want, what := byte('{'), "a JSON object"
	switch f {
	case FormatZipkinV1, FormatZipkinV2:
		want, what = '[', "a JSON array of spans"
	}
	if b[0] != want {
		return invalidf("%s: want %s, got %s", f, what, quoteStart(b, 40))
	}
	return nil
}

// open opens the input for a pass, counting the bytes read and
// decompressing gzip.
func (im *importer) open() (*source, error) {
	if err := im.ctx.Err(); err != nil {
		return nil, err
	}
	rc, err := im.in.Open()
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	im.read = 0
	cr := &countReader{r: rc, im: im}
	src := &source{rc: rc, cr: cr, r: bufio.NewReaderSize(cr, DetectBytes)}
	magic, err := src.r.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		rc.Close()
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(src.r)
		if err != nil {
			rc.Close()
			if cr.err != nil && errors.Is(err, cr.err) {
				return nil, fmt.Errorf("read: %w", err)
			}
			return nil, invalidf("gzip: %v", err)
		}
		src.gz = zr
		src.r = bufio.NewReaderSize(&gzipReader{zr: zr, cr: cr}, DetectBytes)
		im.sum.Gzip = true
	}
	return src, nil
}

// countReader counts the bytes read from the input, reports progress and
// stops reading when the import's context ends.
type countReader struct {
	r   io.Reader
	im  *importer
	err error // the last error of r
}

func (c *countReader) Read(p []byte) (int, error) {
	if err := c.im.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.im.read += int64(n)
	if c.im.pass == 1 && c.im.hash != nil {
		c.im.hash.Write(p[:n])
	}
	if err != nil && err != io.EOF {
		c.err = err
	}
	c.im.progress(false)
	return n, err
}

// gzipReader marks errors of the gzip data (not of the input) as invalid
// input.
type gzipReader struct {
	zr *gzip.Reader
	cr *countReader
}

func (g *gzipReader) Read(p []byte) (int, error) {
	n, err := g.zr.Read(p)
	if err != nil && err != io.EOF && (g.cr.err == nil || !errors.Is(err, g.cr.err)) {
		err = invalidf("gzip: %v", err)
	}
	return n, err
}

// progress calls Options.Progress, at most every progressInterval unless
// final.
func (im *importer) progress(final bool) {
	if im.opts.Progress == nil {
		return
	}
	now := time.Now()
	if !final && now.Sub(im.lastProgress) < progressInterval {
		return
	}
	im.lastProgress = now
	im.opts.Progress(Progress{
		Pass: im.pass, Bytes: im.read, Total: im.in.Size,
		Spans: im.progSpans, Points: im.progPoints,
	})
}

// startPass2 ends pass 1 (its last progress call, the findings into the
// summary), looks for the mark of an earlier import (it returns
// errAlreadyImported when that one is done) and opens the input again for
// pass 2 when reopen is set.
func (im *importer) startPass2(reopen bool) (*source, error) {
	merr := im.checkMark()
	im.progress(true)
	im.finishFindings()
	if merr != nil {
		return nil, merr
	}
	im.pass, im.progSpans, im.progPoints = 2, 0, 0
	im.lastProgress = time.Now()
	if !reopen {
		return nil, nil
	}
	return im.open()
}

// finishFindings puts the pass-1 findings into the summary.
func (im *importer) finishFindings() {
	names := make([]string, 0, len(im.services))
	for s := range im.services {
		names = append(names, s)
	}
	slices.Sort(names)
	im.sum.Services = names
	if im.haveT {
		im.sum.Start = time.Unix(0, im.minT+im.shift).UTC()
		im.sum.End = time.Unix(0, im.maxT+im.shift).UTC()
	}
	im.sum.Shift = time.Duration(im.shift)
}

// computeShift sets the shift that moves the latest time to
// Options.Rebase.
func (im *importer) computeShift() error {
	if im.opts.Rebase.IsZero() || !im.haveT {
		return nil
	}
	target := im.opts.Rebase.UnixNano()
	delta := target - im.maxT
	if im.minT+delta <= 0 {
		return invalidf("rebase to %v would move the earliest time %v before 1970",
			im.opts.Rebase, time.Unix(0, im.minT).UTC())
	}
	im.shift = delta
	return nil
}

// addTime records a time (Unix ns) of the input.
func (im *importer) addTime(t int64) {
	if !im.haveT {
		im.minT, im.maxT, im.haveT = t, t, true
		return
	}
	im.minT = min(im.minT, t)
	im.maxT = max(im.maxT, t)
}

// addService records a service name.
func (im *importer) addService(name []byte) {
	if _, ok := im.services[string(name)]; ok {
		return
	}
	if len(im.services) == maxServices {
		im.warn("more than %d services: the list is cut", maxServices)
		return
	}
	im.services[string(name)] = struct{}{}
}

// warn adds a warning, up to maxWarnings.
func (im *importer) warn(format string, a ...any) {
	switch n := len(im.sum.Warnings); {
	case n < maxWarnings:
		im.sum.Warnings = append(im.sum.Warnings, fmt.Sprintf(format, a...))
	case n == maxWarnings:
		im.sum.Warnings = append(im.sum.Warnings, "more warnings left out")
	}
}

// deliver makes one sink call, repeating it with backoff while the sink
// is overloaded or unavailable. spans and points are what the request
// holds.
func (im *importer) deliver(call func(ctx context.Context) (ingest.Result, error), spans, points int64) error {
	im.seq++
	n := im.seq
	if n <= im.resumeAfter {
		return im.skipCommitted(n, spans, points)
	}
	ctx := im.ctx
	if im.marks != nil {
		ctx = im.marks.WithImportMark(ctx, im.key, im.markValue(n, spans, points))
	}
	delay := retryMin
	for {
		res, err := call(ctx)
		if err == nil {
			im.sum.Requests++
			im.sum.SentSpans += spans
			im.sum.SentPoints += points
			im.progSpans += spans
			im.progPoints += points
			if res.Rejected > 0 {
				im.reject(res)
			}
			im.progress(false)
			return nil
		}
		if !retryable(err) {
			im.sendErr = fmt.Errorf("request %d: %w", n, err)
			return im.sendErr
		}
		im.sum.Retries++
		im.log.Debug("sink refused request, retrying", "request", n, "delay", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-im.ctx.Done():
			t.Stop()
			im.sendErr = fmt.Errorf("request %d: %w (while retrying after: %v)", n, context.Cause(im.ctx), err)
			return im.sendErr
		case <-t.C:
		}
		delay = min(2*delay, retryMax)
	}
}

// reject records a partial success.
func (im *importer) reject(res ingest.Result) {
	im.sum.Rejected += res.Rejected
	reason := res.Message
	if reason == "" {
		reason = "no reason given"
	}
	if im.rejects == nil {
		im.rejects = make(map[string]int)
	}
	i, ok := im.rejects[reason]
	if !ok {
		if len(im.rejects) >= maxRejectReasons {
			reason = "other reasons"
			i, ok = im.rejects[reason]
		}
		if !ok {
			i = len(im.sum.Rejects)
			im.rejects[reason] = i
			im.sum.Rejects = append(im.sum.Rejects, Reject{Reason: reason})
		}
	}
	im.sum.Rejects[i].Count += res.Rejected
}

// decodeErr picks the error to return from a decoder that called back
// into the importer: the sink error that stopped pass 2 as it was, else
// err.
func (im *importer) decodeErr(err error) error {
	if im.sendErr != nil {
		return im.sendErr
	}
	return err
}

// stamp is the time of the points of files without times.
func (im *importer) stamp() time.Time {
	if !im.opts.Rebase.IsZero() {
		return im.opts.Rebase
	}
	return im.opts.Now()
}

// unixNano returns t in Unix nanoseconds; t must lie after the Unix epoch
// and before the year 2262.
func unixNano(t time.Time) (int64, error) {
	if !t.After(time.Unix(0, 0)) || t.After(time.Unix(0, math.MaxInt64)) {
		return 0, fmt.Errorf("time %v is not between the Unix epoch and the year 2262", t)
	}
	return t.UnixNano(), nil
}

// invalidError is an input error: it wraps ingest.ErrInvalid (and its
// cause, if any) without adding their text to the message.
type invalidError struct {
	msg   string
	cause error
}

func (e *invalidError) Error() string { return e.msg }

func (e *invalidError) Unwrap() []error {
	if e.cause != nil {
		return []error{ingest.ErrInvalid, e.cause}
	}
	return []error{ingest.ErrInvalid}
}

// invalidf returns an input error.
func invalidf(format string, a ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, a...)}
}

// plainInvalid drops the "invalid payload: " that some readers put at the
// start of their input errors, keeping the error in the chain.
func plainInvalid(err error) error {
	prefix := ingest.ErrInvalid.Error() + ": "
	if msg := err.Error(); errors.Is(err, ingest.ErrInvalid) && strings.HasPrefix(msg, prefix) {
		return &invalidError{msg: strings.TrimPrefix(msg, prefix), cause: err}
	}
	return err
}

// baseName returns a file name without directory and extension (and
// without .gz).
func baseName(name string) string {
	b := filepath.Base(name)
	b = strings.TrimSuffix(b, ".gz")
	return strings.TrimSuffix(b, filepath.Ext(b))
}

// recentSet remembers the last size keys added, first in first out.
type recentSet struct {
	size int
	m    map[[16]byte]struct{}
	ring [][16]byte
	next int
}

func newRecentSet(size int) *recentSet {
	return &recentSet{size: size, m: make(map[[16]byte]struct{})}
}

// add adds k and reports whether it was not remembered.
func (s *recentSet) add(k [16]byte) bool {
	if _, ok := s.m[k]; ok {
		return false
	}
	if len(s.ring) < s.size {
		s.ring = append(s.ring, k)
	} else {
		delete(s.m, s.ring[s.next])
		s.ring[s.next] = k
		s.next = (s.next + 1) % s.size
	}
	s.m[k] = struct{}{}
	return true
}
