package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/flowscope/flowscope/ingest/storesink"

	"github.com/schollz/progressbar/v3"

	"github.com/flowscope/flowscope/ingest/importer"
	"github.com/flowscope/flowscope/ingest/importer/importhttp"
	"github.com/flowscope/flowscope/internal/collector"
	"github.com/flowscope/flowscope/internal/config"
)

const importUsage = `Usage: collector import [flags] FILE...

Imports spigo flow JSON (Zipkin v1), spigo Guesstimate (.guess), spigo
metrics JSON, spigo graph JSON (a declared architecture), spigo architecture
JSON, Zipkin v1/v2 JSON and OTLP/JSON files (also gzip-compressed). The
format is detected from the content. Each file is read and checked whole
before anything of it is sent, so a malformed file changes nothing.

By default the files are uploaded to a running collector (POST
/api/v1/import on its HTTP port). With --data-dir the store in that
directory is written directly; no collector may be running on it.

The store remembers what it imported (by the SHA-256 of the file, its
format and whether it is rebased): a file imported before is skipped, one
whose import was interrupted (killed, Ctrl-C, a failure) is resumed after
the last batch stored, so that nothing is stored twice. --force imports
the file again from its start.

Flags:
`

// importCmd runs "collector import" and returns the exit code.
func importCmd(args []string, stdout, stderr io.Writer) int {
	f, code, ok := parseImportFlags(args, stderr)
	if !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	run, closeRun, code, ok := f.runner(stderr)
	if !ok {
		return code
	}
	defer closeRun()
	if failed := f.importFiles(ctx, run, stdout, stderr); failed > 0 {
		return exitError
	}
	return exitOK
}

// importFlags are the parsed flags and files of "collector import".
type importFlags struct {
	to, dataDir, rebase, format, arch string
	asJSON, force                     bool
	mode                              string // progress display: bar, lines or none
	files                             []string
	opts                              importer.Options
}

// importRun imports one file.
type importRun func(ctx context.Context, path string, opts importer.Options, show *progressShow) (importer.Summary, error)

// parseImportFlags parses args. When ok is false, the command ends with
// code (help was shown, or a usage error was reported to stderr).
func parseImportFlags(args []string, stderr io.Writer) (f importFlags, code int, ok bool) {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported below, help by fs.Usage
	fs.StringVar(&f.to, "to", "http://127.0.0.1:8686", "`URL` of a running collector's HTTP port")
	fs.StringVar(&f.dataDir, "data-dir", "", "write the store in `DIR` directly instead of sending to a collector")
	fs.StringVar(&f.rebase, "rebase", "", "shift each file's times so that its latest time is `WHEN`: now, or an RFC 3339 time")
	fs.StringVar(&f.format, "format", "", "the files' `FORMAT` instead of detecting it: "+formatList())
	fs.StringVar(&f.arch, "arch", "", "`NAME` of the architecture stored from a spigo graph or architecture file (default: the file's)")
	fs.BoolVar(&f.asJSON, "json", false, "print each summary as JSON")
	progress := fs.String("progress", "auto", "progress display, `MODE`: auto (a bar on a terminal, lines otherwise), bar, lines or none")
	fs.BoolVar(&f.force, "force", false, "import files again from their start even if they were imported (or partly imported) before")
	fs.Usage = func() {
		io.WriteString(stderr, importUsage)
		printFlags(stderr, fs)
	}
	usageErr := func(format string, a ...any) (importFlags, int, bool) {
		fmt.Fprintf(stderr, "collector import: "+format+"\nRun \"collector import --help\" for the flags.\n", a...)
		return f, exitUsage, false
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, exitOK, false
		}
		return usageErr("%v", config.FlagError(err))
	}
	f.files = fs.Args()
	if len(f.files) == 0 {
		return usageErr("no file given")
	}
	if f.format != "" {
		pf, err := importer.ParseFormat(f.format)
		if err != nil {
			return usageErr("%v", err)
		}
		f.opts.Format = pf
	}
	if _, err := importer.ParseRebase(f.rebase, time.Now()); err != nil {
		return usageErr("%v", err)
	}
	f.opts.ArchName = f.arch
	f.opts.Force = f.force
	f.mode = *progress
	if f.mode == "auto" {
		f.mode = "lines"
		if isTerminal(stderr) {
			f.mode = "bar"
		}
	}
	if f.mode != "bar" && f.mode != "lines" && f.mode != "none" {
		return usageErr("invalid --progress %q: want auto, bar, lines or none", *progress)
	}
	if f.dataDir == "" {
		base, err := url.Parse(f.to)
		if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
			return usageErr("invalid --to %q: want a URL like http://127.0.0.1:8686", f.to)
		}
	}
	return f, exitOK, true
}

// runner returns how each file is imported: into the store in --data-dir,
// opened here (close closes it), or uploaded to the collector at --to.
// When ok is false the store could not be opened (reported to stderr).
func (f *importFlags) runner(stderr io.Writer) (run importRun, closeRun func(), code int, ok bool) {
	if f.dataDir == "" {
		base, _ := url.Parse(f.to) // checked by parseImportFlags
		return func(ctx context.Context, path string, _ importer.Options, show *progressShow) (importer.Summary, error) {
			return upload(ctx, base, path, f.format, f.rebase, f.arch, f.force, show)
		}, func() {}, exitOK, true
	}
	cfg := config.Default()
	cfg.DataDir = f.dataDir
	db, err := collector.OpenStore(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		var pathErr *os.PathError
		if errors.As(err, &pathErr) {
			// A file system problem (permissions, a file where the
			// directory should be): the error says it all.
			fmt.Fprintf(stderr, "collector import: %v\n", err)
		} else {
			fmt.Fprintf(stderr, "collector import: %v (is a collector running on %s? then import with --to)\n", err, f.dataDir)
		}
		return nil, nil, exitError, false
	}
	closeRun = func() {
		if err := db.Close(); err != nil {
			fmt.Fprintf(stderr, "collector import: close store: %v\n", err)
		}
	}
	return func(ctx context.Context, path string, opts importer.Options, show *progressShow) (importer.Summary, error) {
		in, err := importer.FileInput(path)
		if err != nil {
			return importer.Summary{}, err
		}
		opts.Progress = show.update
		return importer.Import(ctx, in, storesink.New(db), opts)
	}, closeRun, exitOK, true
}

// importFiles imports every file with run, printing each summary, and
// returns how many failed. An interrupt stops it after the current file.
func (f *importFlags) importFiles(ctx context.Context, run importRun, stdout, stderr io.Writer) (failed int) {
	for _, path := range f.files {
		if fi, err := os.Stat(path); err == nil && fi.IsDir() {
			failed++
			fmt.Fprintf(stderr, "collector import: %s is a directory; name the files in it, such as %s\n", path, filepath.Join(path, "*.json"))
			continue
		}
		show := newProgressShow(f.mode, path, stderr)
		opts := f.opts
		opts.Rebase, _ = importer.ParseRebase(f.rebase, time.Now()) // checked above; "now" is each file's start
		sum, err := run(ctx, path, opts, show)
		show.done()
		if err != nil {
			failed++
			fmt.Fprintf(stderr, "collector import: %s: %v\n", path, err)
			if sum.Requests > 0 || sum.Previous != nil {
				fmt.Fprintf(stderr, "collector import: %s: partly imported before the failure (run the same command again to resume):\n", path)
				printSummary(stderr, sum)
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if f.asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(sum)
		} else {
			printSummary(stdout, sum)
		}
	}
	return failed
}

func formatList() string {
	var names []string
	for _, f := range importer.Formats() {
		names = append(names, string(f))
	}
	return strings.Join(names, ", ")
}

// upload sends the file at path to a collector's POST /api/v1/import and
// returns the summary it answers.
func upload(ctx context.Context, base *url.URL, path, format, rebase, arch string, force bool, show *progressShow) (importer.Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return importer.Summary{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return importer.Summary{}, err
	}
	q := url.Values{"name": {filepath.Base(path)}}
	for k, v := range map[string]string{"format": format, "rebase": rebase, "arch": arch} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if force {
		q.Set("force", "true")
	}
	u := base.JoinPath(importhttp.Path)
	u.RawQuery = q.Encode()
	body := &countingReader{r: f, total: fi.Size(), show: show}
	req, err := http.NewRequestWithContext(ctx, "POST", u.String(), body)
	if err != nil {
		return importer.Summary{}, err
	}
	req.ContentLength = fi.Size()
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return importer.Summary{}, sendError(base, err)
	}
	defer resp.Body.Close()
	show.uploaded()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return importer.Summary{}, fmt.Errorf("read the answer of %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error   string
			Summary *importer.Summary
		}
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			return importer.Summary{}, fmt.Errorf("%s: %s: %s%s", u.Redacted(), resp.Status, describeBody(resp.Header.Get("Content-Type"), raw), notCollectorHint(base))
		}
		var sum importer.Summary
		if e.Summary != nil {
			sum = *e.Summary
		}
		return sum, errors.New(e.Error)
	}
	var sum importer.Summary
	if err := json.Unmarshal(raw, &sum); err != nil {
		return importer.Summary{}, fmt.Errorf("%s: %s, but not an import summary: %s%s", u.Redacted(), resp.Status, describeBody(resp.Header.Get("Content-Type"), raw), notCollectorHint(base))
	}
	return sum, nil
}

// sendError explains a failed import request to base. Only an error of
// the connection itself (nothing listening, no route, a server speaking
// something else than HTTP/1.1) suggests that no collector is there.
func sendError(base *url.URL, err error) error {
	var opErr *net.OpError
	switch {
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Errorf("send to %s: %w (is a collector running there? or import with --data-dir)", base.Redacted(), err)
	case strings.Contains(err.Error(), "malformed HTTP response"):
		// net/http quotes the bytes it got, such as an HTTP/2 frame of a
		// gRPC port; they say nothing to the user.
		return fmt.Errorf("send to %s: the server did not answer in HTTP/1.1%s", base.Redacted(), notCollectorHint(base))
	}
	return fmt.Errorf("send to %s: %w", base.Redacted(), err)
}

// notCollectorHint suggests the collector's HTTP port for an answer that
// did not come from a collector.
func notCollectorHint(base *url.URL) string {
	return fmt.Sprintf(" (is %s the HTTP port of a collector? it is %s by default)", base.Host, defaultHTTPPort)
}

// defaultHTTPPort is the default port of the collector's UI and API.
const defaultHTTPPort = "8686"

// maxBodyQuote is how much of an unexpected answer is quoted in an error.
const maxBodyQuote = 200

// describeBody describes an answer body that is not what the import
// expects, on one line without control characters: short printable text
// is quoted (its first maxBodyQuote bytes), anything else — protobuf,
// binary, HTML — is summarised by its content type and length.
func describeBody(contentType string, body []byte) string {
	text := bytes.TrimSpace(body)
	if len(text) == 0 {
		return "empty body"
	}
	mediaType, _, _ := mime.ParseMediaType(contentType)
	printable := utf8.Valid(text) && !bytes.ContainsFunc(text, func(r rune) bool {
		return unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r'
	})
	if printable && (mediaType == "" || strings.HasPrefix(mediaType, "text/plain") || strings.HasSuffix(mediaType, "json")) {
		line := strings.Join(strings.Fields(string(text)), " ") // one line
		if len(line) > maxBodyQuote {
			cut := maxBodyQuote
			for !utf8.RuneStart(line[cut]) {
				cut--
			}
			line = line[:cut] + "…"
		}
		return strconv.Quote(line)
	}
	if contentType == "" {
		contentType = "no content type"
	}
	return fmt.Sprintf("a body of %s (%s)", byteCount(int64(len(body))), contentType)
}

// printFlags writes the flags of fs as config.PrintUsage does for serve:
// spelled with two dashes, each with its argument and default.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool {
			arg = ""
		}
		line := "  --" + f.Name
		if arg != "" {
			line += " " + strings.ToUpper(arg)
		}
		line += "\n        " + usage
		if f.DefValue != "" && f.DefValue != "false" {
			line += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintln(w, line)
	})
	fmt.Fprintln(w, "  -h, --help\n        print this help")
}

// countingReader reports the bytes read from r to show.
type countingReader struct {
	r     io.Reader
	n     int64
	total int64
	show  *progressShow
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.show.update(importer.Progress{Pass: 0, Bytes: c.n, Total: c.total})
	return n, err
}

// progressShow displays the progress of one file: a bar on a terminal,
// a line every few seconds otherwise, or nothing.
type progressShow struct {
	mode     string
	name     string
	w        io.Writer
	bar      *progressbar.ProgressBar
	pass     int
	last     time.Time
	lastLine string
}

func newProgressShow(mode, name string, w io.Writer) *progressShow {
	return &progressShow{mode: mode, name: name, w: w, pass: -1}
}

// passLabel names a pass: 0 upload, 1 check, 2 send.
var passLabel = map[int]string{0: "upload", 1: "check", 2: "import"}

func (p *progressShow) update(pr importer.Progress) {
	switch p.mode {
	case "none":
		return
	case "bar":
		if pr.Pass != p.pass {
			if p.bar != nil {
				p.bar.Finish()
			}
			p.pass = pr.Pass
			p.bar = progressbar.NewOptions64(pr.Total,
				progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetDescription(fmt.Sprintf("%s %s", passLabel[pr.Pass], filepath.Base(p.name))),
				progressbar.OptionShowBytes(true),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionShowCount(),
				progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
				progressbar.OptionSetWidth(30),
			)
		}
		p.bar.Set64(pr.Bytes)
	case "lines":
		now := time.Now()
		if pr.Pass == p.pass && now.Sub(p.last) < 2*time.Second && (pr.Total <= 0 || pr.Bytes < pr.Total) {
			return
		}
		p.pass, p.last = pr.Pass, now
		line := fmt.Sprintf("%s %s: %s", passLabel[pr.Pass], p.name, byteCount(pr.Bytes))
		if pr.Total > 0 {
			line += fmt.Sprintf(" of %s (%.0f%%)", byteCount(pr.Total), 100*float64(pr.Bytes)/float64(pr.Total))
		}
		if pr.Spans > 0 {
			line += fmt.Sprintf(", %d spans", pr.Spans)
		}
		if pr.Points > 0 {
			line += fmt.Sprintf(", %d points", pr.Points)
		}
		if line != p.lastLine {
			fmt.Fprintln(p.w, line)
			p.lastLine = line
		}
	}
}

// uploaded marks the end of an upload: the collector is importing.
func (p *progressShow) uploaded() {
	if p.bar != nil {
		p.bar.Finish()
		p.bar = nil
	}
	if p.mode == "lines" {
		fmt.Fprintf(p.w, "import %s: uploaded, the collector is importing it\n", p.name)
	}
}

func (p *progressShow) done() {
	if p.bar != nil {
		p.bar.Finish()
		p.bar = nil
	}
}

func byteCount(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// printSummary writes a summary as aligned "key: value" lines.
func printSummary(w io.Writer, s importer.Summary) {
	fmt.Fprintf(w, "%s: %s, %s\n", s.Name, s.Format, byteCount(s.Bytes))
	line := func(k string, format string, a ...any) {
		fmt.Fprintf(w, "  %-13s %s\n", k+":", fmt.Sprintf(format, a...))
	}
	if p := s.Previous; p != nil && s.AlreadyImported {
		line("already", "imported %s (%d spans, %d points in %d requests); nothing sent, --force imports it again",
			p.Updated.Local().Format(time.RFC3339), p.SentSpans, p.SentPoints, p.Requests)
	} else if p != nil {
		line("resumed", "after request %d of the import started %s (%d spans, %d points already stored)",
			p.Requests, p.Started.Local().Format(time.RFC3339), p.SentSpans, p.SentPoints)
	}
	if s.Spans > 0 || s.OTLPSpans > 0 {
		line("spans", "%d (%d OTLP spans, %d sent)", s.Spans, s.OTLPSpans, s.SentSpans)
		line("traces", "%d", s.Traces)
	}
	if len(s.Services) > 0 {
		line("services", "%d: %s", len(s.Services), strings.Join(s.Services, ", "))
	}
	if s.UnnamedSpans > 0 {
		line("unnamed", "%d spans without a service name (shown as unknown_service)", s.UnnamedSpans)
	}
	if s.MetricPoints > 0 {
		line("points", "%d (%d sent)", s.MetricPoints, s.SentPoints)
	}
	if !s.Start.IsZero() {
		line("time range", "%s to %s", s.Start.UTC().Format(time.RFC3339Nano), s.End.UTC().Format(time.RFC3339Nano))
	}
	if s.Shift != 0 {
		line("rebased by", "%s", s.Shift.Round(time.Second))
	}
	if s.Architecture != nil {
		line("architecture", "%s (%d nodes, %d edges)", s.Architecture.Name, s.Architecture.Nodes, s.Architecture.Edges)
	}
	line("rejected", "%d", s.Rejected)
	for _, r := range s.Rejects {
		line("", "%d: %s", r.Count, r.Reason)
	}
	for _, wn := range s.Warnings {
		line("warning", "%s", wn)
	}
	line("requests", "%d (%d retried), %s", s.Requests, s.Retries, s.Elapsed.Round(time.Millisecond))
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
