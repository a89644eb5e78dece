package aggregate

import (
	"encoding/binary"
	"math"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Tags and version of the graph and latency encodings (AppendGraph,
// AppendLatency). The tags cannot be mistaken for a window's version byte
// (1 to windowFormatVersion), so DecodeWindow rejects these encodings and
// DecodeGraph and DecodeLatency reject windows.
const (
	graphWireTag      = 'G'
	latencyWireTag    = 'L'
	wireFormatVersion = 1
)

// Flags of an encoded rollup (the byte before its window-format encoding).
const (
	wireHist        = 1 << iota // Hist is not nil
	wireCapUnset                // the exemplar cap is unset (0: DefaultMaxExemplars, or the first merged rollup's)
	wireCapOwn                  // a byte follows: the rollup's own exemplar cap, not the geometry's
	wireRollupFlags = wireHist | wireCapUnset | wireCapOwn
)

// Smallest encodings, in bytes, bounding the counts a decoder accepts: a
// rollup is its flags, three counts, the body length and the smallest body
// (no buckets, three empty exemplar lists, retried, no failed band).
const (
	wireRollupMin = 1 + 3 + 1 + 6
	wireNodeMin   = 4 + 1 + 2 + wireRollupMin
	wireEdgeMin   = 2 + 1 + 1 + wireRollupMin
	wireStepMin   = 1 + wireRollupMin
)

// AppendGraph appends the binary encoding of g, whose rollups have
// geometry geo, to dst (format in the package documentation, "Graph and
// latency encoding"). The output is deterministic: equal graphs encode to
// equal bytes. g is not modified. Histograms of another geometry than geo
// are re-bucketed by DecodeGraph, which loses their exact buckets, and
// rollups holding more exemplars than their cap lose the extra ones.
func AppendGraph(dst []byte, g *Graph, geo Geometry) []byte {
	geo = geo.normalized()
	dst = appendWireHeader(dst, graphWireTag, geo)
	dst = binary.AppendVarint(dst, g.Seconds)

	// The string table, in order of first use: edges repeat node IDs.
	strs := map[string]int{}
	var table []string
	intern := func(s string) {
		if _, ok := strs[s]; !ok {
			strs[s] = len(table)
			table = append(table, s)
		}
	}
	for i := range g.Nodes {
		n := &g.Nodes[i]
		intern(n.ID)
		intern(n.Namespace)
		intern(n.Region)
		intern(n.Service)
	}
	for i := range g.Edges {
		intern(g.Edges[i].Source)
		intern(g.Edges[i].Target)
	}
	dst = binary.AppendUvarint(dst, uint64(len(table)))
	for _, s := range table {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}

	var scratch []byte
	dst = binary.AppendUvarint(dst, uint64(len(g.Nodes)))
	for i := range g.Nodes {
		n := &g.Nodes[i]
		for _, s := range [...]string{n.ID, n.Namespace, n.Region, n.Service} {
			dst = binary.AppendUvarint(dst, uint64(strs[s]))
		}
		dst = append(dst, wireBool(n.Virtual))
		dst = binary.AppendVarint(dst, n.Spans)
		dst = binary.AppendVarint(dst, n.SpanErrors)
		dst, scratch = appendWireRollup(dst, &n.Requests, geo, scratch)
	}
	dst = binary.AppendUvarint(dst, uint64(len(g.Edges)))
	for i := range g.Edges {
		e := &g.Edges[i]
		dst = binary.AppendUvarint(dst, uint64(strs[e.Source]))
		dst = binary.AppendUvarint(dst, uint64(strs[e.Target]))
		dst = append(dst, wireBool(e.Virtual))
		dst = binary.AppendVarint(dst, e.Provisional)
		dst, scratch = appendWireRollup(dst, &e.Calls, geo, scratch)
	}
	return dst
}

// DecodeGraph decodes a graph encoded by AppendGraph; its rollups get the
// geometry written in it (returned too). Errors wrap ErrCorrupt. b is not
// retained.
//
// Every field of the graph, its nodes, edges and rollups round-trips
// exactly — a nil Rollup.Hist decodes as nil, an empty one as empty —
// and so does the rollups' internal merge state, so decoded rollups merge
// as the originals would. Nodes and edges keep their encoded order (which
// need not be sorted); Nodes and Edges decode non-nil even when empty,
// while the empty exemplar lists and Failed of a rollup decode nil. Exemplar
// lists are read back through the rules that keep them (slowest first, one
// per octave, newest failing first, without duplicates, within the cap), so
// rollups built by Record and Merge round-trip exactly, while lists
// assembled by hand against those rules come back reordered or trimmed by
// them.
func DecodeGraph(b []byte) (*Graph, Geometry, error) {
	d := &decoder{b: b}
	geo := d.wireHeader(graphWireTag)
	if d.err != nil {
		return nil, Geometry{}, d.err
	}
	g := &Graph{Seconds: d.varint()}
	strs := d.wireStrings()
	scratch := geo.NewRollup().Hist
	g.Nodes = make([]GraphNode, d.count("node", wireNodeMin))
	for i := 0; i < len(g.Nodes) && d.err == nil; i++ {
		n := &g.Nodes[i]
		for _, p := range [...]*string{&n.ID, &n.Namespace, &n.Region, &n.Service} {
			*p = d.str(strs)
		}
		n.Virtual = d.wireBool("node")
		n.Spans = d.varint()
		n.SpanErrors = d.varint()
		d.wireRollup(geo, &n.Requests, scratch)
	}
	g.Edges = make([]GraphEdge, d.count("edge", wireEdgeMin))
	for i := 0; i < len(g.Edges) && d.err == nil; i++ {
		e := &g.Edges[i]
		e.Source = d.str(strs)
		e.Target = d.str(strs)
		e.Virtual = d.wireBool("edge")
		e.Provisional = d.varint()
		d.wireRollup(geo, &e.Calls, scratch)
	}
	d.end()
	if d.err != nil {
		return nil, Geometry{}, d.err
	}
	return g, geo, nil
}

// AppendLatency appends the binary encoding of l, whose rollups have
// geometry geo, to dst (format in the package documentation, "Graph and
// latency encoding"). The output is deterministic; l is not modified. As
// for AppendGraph, geo must be the rollups' geometry for exact round trips.
func AppendLatency(dst []byte, l *Latency, geo Geometry) []byte {
	geo = geo.normalized()
	dst = appendWireHeader(dst, latencyWireTag, geo)
	dst = binary.AppendVarint(dst, l.Provisional)
	var scratch []byte
	dst, scratch = appendWireRollup(dst, &l.Total, geo, scratch)
	dst = binary.AppendUvarint(dst, uint64(len(l.Series)))
	for i := range l.Series {
		s := &l.Series[i]
		dst = binary.AppendVarint(dst, s.Start)
		dst, scratch = appendWireRollup(dst, &s.Rollup, geo, scratch)
	}
	return dst
}

// DecodeLatency decodes a latency distribution encoded by AppendLatency;
// its rollups get the geometry written in it (returned too). Errors wrap
// ErrCorrupt. b is not retained. Round trips are exact as for DecodeGraph;
// the steps keep their encoded order, and an empty Series decodes nil.
func DecodeLatency(b []byte) (*Latency, Geometry, error) {
	d := &decoder{b: b}
	geo := d.wireHeader(latencyWireTag)
	if d.err != nil {
		return nil, Geometry{}, d.err
	}
	l := &Latency{Provisional: d.varint()}
	scratch := geo.NewRollup().Hist
	d.wireRollup(geo, &l.Total, scratch)
	if n := d.count("step", wireStepMin); n > 0 {
		l.Series = make([]LatencyStep, n)
		for i := 0; i < n && d.err == nil; i++ {
			s := &l.Series[i]
			s.Start = d.varint()
			d.wireRollup(geo, &s.Rollup, scratch)
		}
	}
	d.end()
	if d.err != nil {
		return nil, Geometry{}, d.err
	}
	return l, geo, nil
}

// appendWireHeader appends the tag, the version and geo (normalized).
func appendWireHeader(dst []byte, tag byte, geo Geometry) []byte {
	dst = append(dst, tag, wireFormatVersion, byte(geo.Digits))
	dst = binary.AppendUvarint(dst, uint64(geo.MaxValue))
	return append(dst, byte(geo.MaxExemplars))
}

// appendWireRollup appends r: its flags, its own exemplar cap if it is set
// and not geo's, then r as in a window (appendRollup).
func appendWireRollup(dst []byte, r *Rollup, geo Geometry, scratch []byte) ([]byte, []byte) {
	var flags byte
	if r.Hist != nil {
		flags |= wireHist
	}
	switch {
	case r.maxExemplars <= 0 || r.maxExemplars > 255:
		// Only 0 happens (a zero Rollup); exemplarCap treats the
		// others as unset too, but for > 255, which Geometry rules out.
		flags |= wireCapUnset
	case r.maxExemplars != int32(geo.MaxExemplars):
		flags |= wireCapOwn
	}
	dst = append(dst, flags)
	if flags&wireCapOwn != 0 {
		dst = append(dst, byte(r.maxExemplars))
	}
	return appendRollup(dst, r, scratch)
}

func wireBool(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// wireHeader reads the tag, the version and the geometry, which must be
// valid (normalized), and readies d to read window-format rollups.
func (d *decoder) wireHeader(tag byte) Geometry {
	if t := d.byte(); d.err == nil && t != tag {
		d.fail("tag %#x, want %q", t, rune(tag))
	}
	if v := d.byte(); d.err == nil && v != wireFormatVersion {
		d.fail("unknown %q format version %d", rune(tag), v)
	}
	var geo Geometry
	geo.Digits = int(d.byte())
	mv := d.uvarint()
	geo.MaxExemplars = int(d.byte())
	if d.err != nil {
		return Geometry{}
	}
	geo.MaxValue = int64(min(mv, math.MaxInt64))
	if mv > math.MaxInt64 || geo.normalized() != geo {
		d.fail("geometry: %d digits, max value %d, %d exemplars", geo.Digits, mv, geo.MaxExemplars)
		return Geometry{}
	}
	d.version = windowFormatVersion
	return geo
}

// wireStrings reads a string table.
func (d *decoder) wireStrings() []string {
	strs := make([]string, d.count("string", 1))
	for i := 0; i < len(strs) && d.err == nil; i++ {
		n := d.uvarint()
		if d.err == nil && n > uint64(len(d.b)) {
			d.fail("string length %d exceeds the %d bytes left", n, len(d.b))
		}
		strs[i] = string(d.bytes(int(n)))
	}
	return strs
}

func (d *decoder) wireBool(what string) bool {
	switch f := d.byte(); f {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("%s flags %#x", what, f)
		return false
	}
}

// wireRollupHead reads an encoded rollup's flags and exemplar cap, which
// it sets in r (0 for an unset cap); ok is false on an error.
func (d *decoder) wireRollupHead(geo Geometry, r *Rollup) (flags byte, ok bool) {
	flags = d.byte()
	switch {
	case d.err != nil:
		return 0, false
	case flags&^wireRollupFlags != 0 || flags&(wireCapUnset|wireCapOwn) == wireCapUnset|wireCapOwn:
		d.fail("rollup flags %#x", flags)
		return 0, false
	case flags&wireCapUnset != 0:
		// Read the exemplars with the cap an unset one stands for.
		r.maxExemplars = 0
	case flags&wireCapOwn != 0:
		c := d.byte()
		if d.err == nil && c == 0 {
			d.fail("exemplar cap 0")
		}
		r.maxExemplars = int32(c)
	default:
		r.maxExemplars = int32(geo.MaxExemplars)
	}
	return flags, d.err == nil
}

// wireRollup reads a rollup written by appendWireRollup into r (zero),
// its buckets through scratch, a histogram of geometry geo.
func (d *decoder) wireRollup(geo Geometry, r *Rollup, scratch *hdr.PackedHistogram) {
	flags, ok := d.wireRollupHead(geo, r)
	if !ok {
		return
	}
	d.rollupCounts(r)
	scratch.Reset()
	d.rollupBody(geo, r, bucketDst{packed: scratch})
	switch {
	case d.err != nil:
	case flags&wireHist != 0:
		r.Hist = scratch.Clone()
	case scratch.Populated() != 0:
		d.fail("buckets of a nil histogram")
	}
}
