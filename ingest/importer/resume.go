package importer

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// MarkSink is implemented by a Sink that can record the progress of an
// import in the same atomic write as the data it describes (storesink.Sink
// does). Import discovers it by type assertion; with a Sink without it, an
// import keeps no marks and importing a file again sends it again.
//
// The methods are called from the goroutine that runs Import.
type MarkSink interface {
	// WithImportMark returns a context that makes the next ConsumeTraces
	// or ConsumeMetrics called with it also store value under key, in the
	// same atomic write as the items it stores. A call that stores no item
	// (all rejected, or an error) stores no mark either.
	WithImportMark(ctx context.Context, key, value []byte) context.Context
	// ImportMark returns the value last stored under key, or nil.
	ImportMark(key []byte) ([]byte, error)
	// DeleteImportMark removes the mark under key.
	DeleteImportMark(key []byte) error
}

// Mark is the progress record of the import of one file, stored by a
// MarkSink under a key made of the file's SHA-256, its format and whether
// it is rebased (see the package documentation, "Resume"). Each request
// of pass 2 carries the mark that describes the state after it.
type Mark struct {
	// Name is the file name of the import that wrote the mark.
	Name string `json:"name"`
	// Format is the format read.
	Format Format `json:"format"`
	// Batch is the batch size used (Options.BatchSpans); a resumed
	// import uses it again, so that its requests are the same.
	Batch int `json:"batch"`
	// Shift is the amount added to every time; a resumed import uses it
	// again, whatever its own Options.Rebase.
	Shift time.Duration `json:"shift"`
	// Requests counts the requests of pass 2 stored, in order: a resumed
	// import sends from request Requests+1 on.
	Requests int64 `json:"requests"`
	// SentSpans and SentPoints count the spans and points in those
	// requests.
	SentSpans  int64 `json:"sentSpans"`
	SentPoints int64 `json:"sentPoints"`
	// Rejected counts the items refused one by one before the last
	// stored request (the refusals of that request are not counted).
	Rejected int64 `json:"rejected"`
	// Done tells that every span and point of the file was sent.
	Done bool `json:"done"`
	// Started is when the first attempt to import the file began;
	// Updated when the last stored request was sent.
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
}

// markVersion prefixes the keys of marks; a change of the key or of the
// batching must change it.
const markVersion = "file1:"

// errAlreadyImported stops an import whose mark says it is done.
var errAlreadyImported = errors.New("already imported")

// markKey is the key of the mark of the import of the file with SHA-256
// sum, read as format f, rebased or not.
func markKey(sum []byte, f Format, rebased bool) []byte {
	k := markVersion + hex.EncodeToString(sum) + ":" + string(f)
	if rebased {
		k += ":rebased"
	}
	return []byte(k)
}

// marksApply reports whether the import keeps marks: with a MarkSink, for
// the formats stored as spans or points (an architecture replaces the one
// of its name, which makes importing it again harmless).
func (im *importer) marksApply() (MarkSink, bool) {
	ms, ok := im.sink.(MarkSink)
	if !ok || im.hash == nil {
		return nil, false
	}
	switch im.sum.Format {
	case FormatSpigoGraph, FormatSpigoArch:
		return nil, false
	}
	return ms, true
}

// drainPass1 reads the rest of the pass-1 input, so that the hash covers
// the whole file (a decoder may stop before trailing blanks).
func (im *importer) drainPass1() error {
	if im.src1 == nil || im.src1.cr == nil {
		return nil
	}
	if _, err := io.Copy(io.Discard, im.src1.cr); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return nil
}

// checkMark runs between the passes: it finds the mark of an earlier
// import of the same file and decides to skip the import (done:
// errAlreadyImported), resume it (with the shift and batch size of the
// earlier import) or start it; with Options.Force it deletes the mark.
// It must run before finishFindings, which reports the shift.
func (im *importer) checkMark() error {
	ms, ok := im.marksApply()
	if !ok {
		return nil
	}
	if err := im.drainPass1(); err != nil {
		return err
	}
	im.key = markKey(im.hash.Sum(nil), im.sum.Format, !im.opts.Rebase.IsZero())
	now := im.opts.Now()
	im.mark = Mark{Name: im.in.Name, Format: im.sum.Format, Batch: im.opts.batch(), Shift: time.Duration(im.shift), Started: now}
	if im.opts.Force {
		if err := ms.DeleteImportMark(im.key); err != nil {
			return fmt.Errorf("forget the earlier import: %w", err)
		}
		im.marks = ms
		return nil
	}
	v, err := ms.ImportMark(im.key)
	if err != nil {
		return fmt.Errorf("look for an earlier import: %w", err)
	}
	if v != nil {
		var prev Mark
		if err := json.Unmarshal(v, &prev); err != nil || prev.Batch <= 0 {
			return fmt.Errorf("the record of an earlier import of this file (key %s) is unreadable; import with force to import it again from its start", im.key)
		}
		im.sum.Previous = &prev
		im.shift = int64(prev.Shift)
		if prev.Done {
			return errAlreadyImported
		}
		if !im.opts.Rebase.IsZero() && prev.Shift != im.mark.Shift {
			im.warn("resumed with the shift of the interrupted import (%s), not the one asked for (%s)",
				prev.Shift.Round(time.Second), im.mark.Shift.Round(time.Second))
		}
		if prev.Batch != im.opts.batch() {
			im.opts.BatchSpans = prev.Batch
		}
		im.resumeAfter = prev.Requests
		im.rejectedBefore = prev.Rejected
		im.mark = prev
		im.mark.Name = im.in.Name
		im.log.Info("resuming an interrupted import", "after_request", prev.Requests,
			"spans", prev.SentSpans, "points", prev.SentPoints, "started", prev.Started)
	}
	im.marks = ms
	return nil
}

// markValue is the mark a request carries: the state once it is stored.
func (im *importer) markValue(seq, spans, points int64) []byte {
	m := im.mark
	m.Requests = seq
	m.SentSpans = im.sum.SentSpans + spans
	m.SentPoints = im.sum.SentPoints + points
	m.Rejected = im.rejectedBefore + im.sum.Rejected
	m.Done = m.SentSpans == im.sum.OTLPSpans && m.SentPoints == im.sum.MetricPoints
	m.Updated = im.opts.Now().UTC()
	m.Started = m.Started.UTC()
	b, err := json.Marshal(m)
	if err != nil {
		panic("BUG: encode import mark: " + err.Error())
	}
	return b
}

// skipCommitted accounts for request seq, stored by the interrupted
// import being resumed, without sending it. At the last such request it
// checks that the requests are the ones the mark counted.
func (im *importer) skipCommitted(seq, spans, points int64) error {
	im.sum.SentSpans += spans
	im.sum.SentPoints += points
	im.progSpans += spans
	im.progPoints += points
	if seq == im.resumeAfter {
		if p := im.sum.Previous; im.sum.SentSpans != p.SentSpans || im.sum.SentPoints != p.SentPoints {
			im.sendErr = fmt.Errorf("resume after request %d: the earlier import stored %d spans and %d points in its requests, this one counts %d and %d; import with force to import the file again from its start",
				seq, p.SentSpans, p.SentPoints, im.sum.SentSpans, im.sum.SentPoints)
			return im.sendErr
		}
	}
	im.progress(false)
	return nil
}
