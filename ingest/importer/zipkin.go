package importer

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/ingest/zipkin"
)

// importZipkin imports a Zipkin JSON array in two passes over the stream.
func (im *importer) importZipkin(src *source, v zipkin.Version) error {
	zo := zipkin.Options{BatchSpans: im.opts.batch()}
	visit := im.collectVisitor()
	var detect *spigoDetect
	if v == zipkin.V1 {
		detect = &spigoDetect{}
	}
	st, err := zipkin.Decode(src.r, v, zo, func(req []byte, spans int) error {
		if err := walkTraces(req, visit); err != nil {
			return fmt.Errorf("BUG: walk converted request: %w", err)
		}
		if detect != nil {
			if err := detect.add(req); err != nil {
				return fmt.Errorf("BUG: walk converted request: %w", err)
			}
		}
		im.progSpans += int64(spans)
		return nil
	})
	if err != nil {
		return err
	}
	im.sum.Bytes = im.read
	im.sum.Spans, im.sum.OTLPSpans, im.sum.Traces = st.Spans, st.OTLPSpans, st.Traces
	if st.Incomplete > 0 {
		im.warn("%d OTLP spans have no end (a client without cr, a server without ss): stored with flowscope.duration_unknown and no duration", st.Incomplete)
	}
	if st.EmptyServiceNames > 0 {
		im.warn("%d spans have an endpoint with an empty serviceName: stored without service.name (see unnamedSpans)", st.EmptyServiceNames)
	}
	if st.UnknownAnnotations > 0 {
		im.warn("%d annotations are not Zipkin core annotations: stored as span events", st.UnknownAnnotations)
	}
	if err := im.computeShift(); err != nil {
		return err
	}

	spigoFlow := detect != nil && detect.isSpigo()
	if spigoFlow {
		im.sum.SpigoTraceIDs = true
		// The trace IDs derive from the file's hash: read pass 1 to its
		// end (an import without marks stops at the array's end).
		if err := im.drainPass1(); err != nil {
			return err
		}
	}
	src2, err := im.startPass2(true)
	if err != nil {
		return err
	}
	defer src2.Close()
	if spigoFlow {
		im.spigo = newSpigoRewriter(im.hash.Sum(nil), !im.opts.Rebase.IsZero())
	}
	// A resumed import uses the batch size of the one it resumes.
	zo.BatchSpans = im.opts.batch()
	st2, err := zipkin.Decode(src2.r, v, zo, func(req []byte, spans int) error {
		return im.sendTraces(req, int64(spans))
	})
	if err != nil {
		return im.decodeErr(err)
	}
	im.progress(true)
	if st2.OTLPSpans != st.OTLPSpans {
		return fmt.Errorf("the input changed between the passes: %d OTLP spans checked, %d sent", st.OTLPSpans, st2.OTLPSpans)
	}
	return nil
}

// collectVisitor returns the traceVisitor of pass 1: it records services,
// spans without service, trace IDs (OTLP/JSON) and the time range.
func (im *importer) collectVisitor() *traceVisitor {
	return &traceVisitor{
		span: func(service, traceID []byte) {
			if len(service) == 0 {
				im.sum.UnnamedSpans++
			} else {
				im.addService(service)
			}
			if im.traceIDs != nil && len(traceID) == 16 && im.traceIDs.add([16]byte(traceID)) {
				im.sum.Traces++
			}
		},
		time: func(b []byte) { im.addTime(int64(binary.LittleEndian.Uint64(b))) },
	}
}

// sendTraces rewrites the trace IDs of a spigo flow file's request and
// shifts its times (on a copy), and sends it.
func (im *importer) sendTraces(req []byte, spans int64) error {
	b := req
	if im.spigo != nil {
		var err error
		if im.scratch, err = im.spigo.rewrite(im.scratch[:0], req); err != nil {
			return fmt.Errorf("BUG: rewrite spigo trace IDs: %w", err)
		}
		b = im.scratch
	}
	if im.shift != 0 {
		if im.spigo == nil {
			im.scratch = append(im.scratch[:0], req...)
			b = im.scratch
		}
		if err := shiftTraces(b, im.shift); err != nil {
			return fmt.Errorf("BUG: shift converted request: %w", err)
		}
	}
	return im.deliver(func(ctx context.Context) (ingest.Result, error) {
		return im.sink.ConsumeTraces(ctx, b)
	}, spans, 0)
}
