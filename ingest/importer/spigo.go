package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/ingest/spigo"
	"github.com/flowscope/flowscope/store"
)

// importSpigo imports a spigo Guesstimate, metrics, graph or architecture
// file: it is read and checked whole (it is small; at most
// Options.MaxReadBytes), then sent.
func (im *importer) importSpigo(src *source, f Format) error {
	limit := im.opts.maxRead()
	lr := &limitedReader{r: src.r, n: limit}
	var err error
	switch f {
	case FormatSpigoGuess:
		err = im.importGuess(lr)
	case FormatSpigoMetrics:
		err = im.importMetricsFile(lr, limit)
	case FormatSpigoGraph:
		err = im.importGraph(lr)
	case FormatSpigoArch:
		err = im.importArch(lr)
	default:
		err = fmt.Errorf("BUG: importSpigo of format %q", f)
	}
	if errors.Is(err, errTooLarge) {
		return invalidf("%s: the file is larger than %d bytes", f, limit)
	}
	if err != nil {
		return plainInvalid(err)
	}
	return nil
}

// errTooLarge is returned by limitedReader past its limit.
var errTooLarge = errors.New("input too large")

// limitedReader reads at most n bytes from r and fails with errTooLarge
// when r holds more.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	if int64(n) > l.n {
		return 0, errTooLarge
	}
	l.n -= int64(n)
	return n, err
}

// importGuess imports a Guesstimate file: one exponential histogram point
// per latency series, at Options.Now (or Rebase).
func (im *importer) importGuess(r io.Reader) error {
	g, err := spigo.ReadGuess(r)
	if err != nil {
		return err
	}
	im.sum.Bytes = im.read
	at := im.stamp()
	req, err := spigo.GuessMetrics(g, at)
	if err != nil {
		return invalidf("spigo guesstimate: %v", err)
	}
	im.guessWarnings(g)
	return im.sendSpigoMetrics(req)
}

// guessWarnings reports the skipped metrics of a Guesstimate file, by
// reason.
func (im *importer) guessWarnings(g *spigo.Guess) {
	var reasons []string
	byReason := make(map[string][]spigo.Skip)
	for _, s := range g.Skipped {
		if _, ok := byReason[s.Reason]; !ok {
			reasons = append(reasons, s.Reason)
		}
		byReason[s.Reason] = append(byReason[s.Reason], s)
	}
	for _, reason := range reasons {
		skips := byReason[reason]
		var ex []string
		for _, s := range skips[:min(3, len(skips))] {
			if s.Name != "" {
				ex = append(ex, fmt.Sprintf("%s (%s)", s.MetricID, clip(s.Name)))
			} else {
				ex = append(ex, s.MetricID)
			}
		}
		more := ""
		if len(skips) > len(ex) {
			more = ", …"
		}
		im.warn("guesstimate: skipped %d series (%s): %s%s", len(skips), reason, strings.Join(ex, ", "), more)
	}
}

// importMetricsFile imports an old spigo metrics file, repairing its
// missing comma: the counters and percentile gauges at Options.Now (or
// Rebase).
func (im *importer) importMetricsFile(r io.Reader, limit int64) error {
	m, warns, err := spigo.ReadMetrics(r, limit)
	if err != nil {
		return err
	}
	im.sum.Bytes = im.read
	for _, w := range warns {
		im.warn("spigo metrics: %s", w)
	}
	req, err := spigo.MetricsRequest(m, im.stamp())
	if err != nil {
		return invalidf("spigo metrics: %v", err)
	}
	return im.sendSpigoMetrics(req)
}

// sendSpigoMetrics records the points of an encoded metrics request and
// sends it.
func (im *importer) sendSpigoMetrics(b []byte) error {
	req := &colmetricspb.ExportMetricsServiceRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		return fmt.Errorf("BUG: decode built metrics: %w", err)
	}
	im.collectMetrics(req)
	if _, err := im.startPass2(false); err != nil {
		return err
	}
	if im.sum.MetricPoints > 0 {
		err := im.deliver(func(ctx context.Context) (ingest.Result, error) {
			return im.sink.ConsumeMetrics(ctx, b)
		}, 0, im.sum.MetricPoints)
		if err != nil {
			return err
		}
	}
	im.progress(true)
	return nil
}

// archName is the name of the architecture stored from a file whose
// architecture is fileArch.
func (im *importer) archName(fileArch string) string {
	switch {
	case im.opts.ArchName != "":
		return im.opts.ArchName
	case fileArch != "":
		return fileArch
	}
	return baseName(im.in.Name)
}

// importGraph stores the architecture of a spigo graph file: one node per
// graph node (ID = its name), with the names traces of the same
// architecture have at each level, and its edges.
func (im *importer) importGraph(r io.Reader) error {
	g, err := spigo.ReadGraph(r)
	if err != nil {
		return err
	}
	im.sum.Bytes = im.read
	a := store.Architecture{
		Name:     im.archName(g.Arch),
		Source:   "spigo graph " + im.in.Name,
		Imported: im.opts.Now(),
		Nodes:    make([]store.ArchNode, 0, len(g.Nodes)),
	}
	collapsed := 0
	for _, n := range g.Nodes {
		a.Nodes = append(a.Nodes, store.ArchNode{
			ID: n.Name, Service: n.Service, Instance: n.Instance,
			Zone: n.Zone, Region: n.Region, Namespace: n.Arch,
		})
		im.addService([]byte(n.Service))
		if n.Instance == "" {
			collapsed++
		}
	}
	seen := make(map[store.ArchEdge]bool, len(g.Edges))
	for _, e := range g.Edges {
		ae := store.ArchEdge{Source: e.Source, Target: e.Target}
		if !seen[ae] {
			seen[ae] = true
			a.Edges = append(a.Edges, ae)
		}
	}
	if d := len(g.Edges) - len(a.Edges); d > 0 {
		im.warn("spigo graph: %d edges repeat an earlier edge's source and target: stored once", d)
	}
	if g.Unknown > 0 {
		im.warn("spigo graph: %d elements of no known kind ignored", g.Unknown)
	}
	if collapsed > 0 {
		im.warn("spigo graph: %d nodes have collapsed names (spigo -f) without an instance: they have no name at the instance level", collapsed)
	}
	return im.putArchitecture(a)
}

// importArch stores the service-level architecture of a spigo
// architecture definition: one node per service and its dependencies.
func (im *importer) importArch(r io.Reader) error {
	def, err := spigo.ReadArch(r)
	if err != nil {
		return err
	}
	im.sum.Bytes = im.read
	ns := def.Name
	if ns == "" {
		ns = baseName(im.in.Name)
	}
	a := store.Architecture{
		Name:     im.archName(def.Name),
		Source:   "spigo arch " + im.in.Name,
		Imported: im.opts.Now(),
		Nodes:    make([]store.ArchNode, 0, len(def.Services)),
	}
	known := make(map[string]bool, len(def.Services))
	for _, s := range def.Services {
		if known[s.Name] {
			continue // ReadArch refuses duplicates; kept for safety
		}
		known[s.Name] = true
		a.Nodes = append(a.Nodes, store.ArchNode{ID: s.Name, Service: s.Name, Namespace: ns})
		im.addService([]byte(s.Name))
	}
	seen := make(map[store.ArchEdge]bool)
	for _, s := range def.Services {
		for _, d := range s.Dependencies {
			switch {
			case d == spigo.EurekaDependency:
				im.warn("spigo arch: service %q: dependency %q (connect across regions) names no service: skipped", clip(s.Name), d)
				continue
			case !known[d]:
				im.warn("spigo arch: service %q: dependency %q is not a service of the architecture: skipped", clip(s.Name), clip(d))
				continue
			}
			e := store.ArchEdge{Source: s.Name, Target: d}
			if !seen[e] {
				seen[e] = true
				a.Edges = append(a.Edges, e)
			}
		}
	}
	return im.putArchitecture(a)
}

// putArchitecture sends an architecture (pass 2).
func (im *importer) putArchitecture(a store.Architecture) error {
	if len(a.Name) > store.MaxArchitectureNameLen {
		return invalidf("architecture name of %d bytes, at most %d allowed", len(a.Name), store.MaxArchitectureNameLen)
	}
	if _, err := im.startPass2(false); err != nil {
		return err
	}
	err := im.deliver(func(ctx context.Context) (ingest.Result, error) {
		return ingest.Result{}, im.sink.PutArchitecture(ctx, a)
	}, 0, 0)
	if err != nil {
		return err
	}
	im.sum.Architecture = &ArchitectureSummary{Name: a.Name, Nodes: len(a.Nodes), Edges: len(a.Edges)}
	im.progress(true)
	return nil
}
