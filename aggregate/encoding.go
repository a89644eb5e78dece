package aggregate

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// windowFormatVersion is the first byte of an encoded window. Versions 1
// (without rollup body lengths), 2 (only the slowest exemplars, without
// flags) and 3 (without retries and failed durations) are still read.
const windowFormatVersion = 4

// AppendWindow appends the binary encoding of w to dst (format in the
// package documentation). The output is deterministic: equal windows
// encode to equal bytes. w is not modified.
func AppendWindow(dst []byte, w *Window) []byte {
	// Dictionary of strings and table of nodes, both sorted.
	strSet := map[string]int{}
	nodeSet := map[Node]int{}
	for k := range w.Series {
		nodeSet[k.Node] = 0
		strSet[k.Operation] = 0
	}
	for k := range w.Edges {
		nodeSet[k.Source] = 0
		nodeSet[k.Target] = 0
		strSet[k.Operation] = 0
	}
	nodes := make([]Node, 0, len(nodeSet))
	for n := range nodeSet {
		nodes = append(nodes, n)
		for _, s := range [...]string{n.Service, n.Instance, n.Zone, n.Region, n.Namespace} {
			strSet[s] = 0
		}
	}
	strs := make([]string, 0, len(strSet))
	for s := range strSet {
		strs = append(strs, s)
	}
	slices.Sort(strs)
	for i, s := range strs {
		strSet[s] = i
	}
	slices.SortFunc(nodes, compareNodes)
	for i, n := range nodes {
		nodeSet[n] = i
	}

	dst = append(dst, windowFormatVersion)
	dst = binary.AppendVarint(dst, w.Start)
	dst = binary.AppendVarint(dst, w.Width)
	dst = binary.AppendUvarint(dst, uint64(len(strs)))
	for _, s := range strs {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(nodes)))
	for _, n := range nodes {
		for _, s := range [...]string{n.Service, n.Instance, n.Zone, n.Region, n.Namespace} {
			dst = binary.AppendUvarint(dst, uint64(strSet[s]))
		}
		var flags byte
		if n.Virtual {
			flags = 1
		}
		dst = append(dst, flags)
	}

	type seriesRow struct {
		node, op     int
		kind, status int32
		r            *Rollup
	}
	series := make([]seriesRow, 0, len(w.Series))
	for k, r := range w.Series {
		series = append(series, seriesRow{nodeSet[k.Node], strSet[k.Operation], k.Kind, k.Status, r})
	}
	slices.SortFunc(series, func(x, y seriesRow) int {
		return cmp.Or(cmp.Compare(x.node, y.node), cmp.Compare(x.op, y.op), cmp.Compare(x.kind, y.kind), cmp.Compare(x.status, y.status))
	})
	var scratch []byte
	dst = binary.AppendUvarint(dst, uint64(len(series)))
	for _, s := range series {
		dst = binary.AppendUvarint(dst, uint64(s.node))
		dst = binary.AppendUvarint(dst, uint64(s.op))
		dst = binary.AppendVarint(dst, int64(s.kind))
		dst = binary.AppendVarint(dst, int64(s.status))
		dst, scratch = appendRollup(dst, s.r, scratch)
	}

	type edgeRow struct {
		src, dst, op int
		r            *Rollup
	}
	edges := make([]edgeRow, 0, len(w.Edges))
	for k, r := range w.Edges {
		edges = append(edges, edgeRow{nodeSet[k.Source], nodeSet[k.Target], strSet[k.Operation], r})
	}
	slices.SortFunc(edges, func(x, y edgeRow) int {
		return cmp.Or(cmp.Compare(x.src, y.src), cmp.Compare(x.dst, y.dst), cmp.Compare(x.op, y.op))
	})
	dst = binary.AppendUvarint(dst, uint64(len(edges)))
	for _, e := range edges {
		dst = binary.AppendUvarint(dst, uint64(e.src))
		dst = binary.AppendUvarint(dst, uint64(e.dst))
		dst = binary.AppendUvarint(dst, uint64(e.op))
		dst, scratch = appendRollup(dst, e.r, scratch)
	}
	return dst
}

// appendRollup appends r, its body (histogram and exemplars) prefixed by
// its length so that readers can skip it; scratch is a reusable buffer.
func appendRollup(dst []byte, r *Rollup, scratch []byte) ([]byte, []byte) {
	dst = binary.AppendVarint(dst, r.Count)
	dst = binary.AppendVarint(dst, r.Errors)
	dst = binary.AppendVarint(dst, r.Clamped)
	scratch = appendRollupBody(scratch[:0], r)
	dst = binary.AppendUvarint(dst, uint64(len(scratch)))
	return append(dst, scratch...), scratch
}

func appendRollupBody(dst []byte, r *Rollup) []byte {
	if r.Hist == nil {
		dst = append(dst, 0)
	} else {
		dst = binary.AppendUvarint(dst, uint64(r.Hist.Populated()))
		prev := int64(0)
		for v, c := range r.Hist.ForEachBucket {
			dst = binary.AppendUvarint(dst, uint64(v-prev))
			dst = binary.AppendUvarint(dst, uint64(c))
			prev = v
		}
	}
	for _, exs := range [...][]Exemplar{r.Exemplars, r.Spread, r.ErrorExemplars} {
		dst = binary.AppendUvarint(dst, uint64(len(exs)))
		for _, ex := range exs {
			dst = append(dst, ex.TraceID[:]...)
			dst = append(dst, ex.SpanID[:]...)
			dst = binary.AppendVarint(dst, ex.Value)
			dst = binary.AppendVarint(dst, ex.Time)
			var flags byte
			if ex.Error {
				flags = 1
			}
			dst = append(dst, flags)
		}
	}
	dst = binary.AppendVarint(dst, r.Retried)
	dst = binary.AppendUvarint(dst, uint64(len(r.Failed)))
	for _, f := range r.Failed {
		dst = binary.AppendUvarint(dst, uint64(f.Band))
		dst = binary.AppendUvarint(dst, uint64(f.Count))
		dst = binary.AppendVarint(dst, f.Min)
		dst = binary.AppendVarint(dst, f.Max)
	}
	return dst
}

// decoder reads the encoding; the first error sticks and makes every later
// read return zero.
type decoder struct {
	b       []byte
	err     error
	version byte
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("unexpected end")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	// One-byte values (most deltas and counts) take the inlined path; an
	// error empties d.b, so it also sticks here.
	if len(d.b) > 0 && d.b[0] < 0x80 {
		v := uint64(d.b[0])
		d.b = d.b[1:]
		return v
	}
	return d.uvarintSlow()
}

func (d *decoder) uvarintSlow() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// nonNeg reads a varint that must be >= 0.
func (d *decoder) nonNeg(what string) int64 {
	v := d.varint()
	if v < 0 {
		d.fail("negative %s", what)
		return 0
	}
	return v
}

// count reads a count of items of at least minSize bytes each, bounded by
// the bytes left, so that corrupt counts cannot allocate much.
func (d *decoder) count(what string, minSize int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)/minSize) {
		d.fail("%s count %d exceeds the %d bytes left", what, n, len(d.b))
		return 0
	}
	return int(n)
}

// index reads an index below n; -1 on error.
func (d *decoder) index(what string, n int) int {
	i := d.uvarint()
	if d.err == nil && i >= uint64(n) {
		d.fail("%s index %d out of range (%d)", what, i, n)
	}
	if d.err != nil {
		return -1
	}
	return int(i)
}

// str reads a string by its dictionary index.
func (d *decoder) str(strs []string) string {
	if i := d.index("string", len(strs)); i >= 0 {
		return strs[i]
	}
	return ""
}

// node reads a node by its table index.
func (d *decoder) node(nodes []Node) Node {
	if i := d.index("node", len(nodes)); i >= 0 {
		return nodes[i]
	}
	return Node{}
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.fail("unexpected end")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// DecodeWindow decodes a window encoded by AppendWindow into rollups of
// geometry g. Histogram buckets recorded with another geometry are
// re-bucketed; values above g.MaxValue are recorded as g.MaxValue and
// counted in Clamped. Errors wrap ErrCorrupt. b is not retained.
func DecodeWindow(b []byte, g Geometry) (*Window, error) {
	g = g.normalized()
	d := &decoder{b: b}
	h := d.header()
	if d.err != nil {
		return nil, d.err
	}
	w := &Window{Start: h.start, Width: h.width}
	// Buckets are recorded into a scratch histogram that keeps its
	// capacity, then cloned at their exact size.
	scratch := g.NewRollup().Hist
	read := func() *Rollup {
		r := &Rollup{maxExemplars: int32(g.MaxExemplars)}
		d.rollupCounts(r)
		scratch.Reset()
		d.rollupBody(g, r, bucketDst{packed: scratch})
		r.Hist = scratch.Clone()
		return r
	}
	ns := d.count("series", 8)
	w.Series = make(map[SeriesKey]*Rollup, ns)
	for i := 0; i < ns && d.err == nil; i++ {
		k := d.seriesKey(h)
		r := read()
		if _, dup := w.Series[k]; dup && d.err == nil {
			d.fail("duplicate series %d", i)
		}
		w.Series[k] = r
	}
	ne := d.count("edge", 8)
	w.Edges = make(map[EdgeKey]*Rollup, ne)
	for i := 0; i < ne && d.err == nil; i++ {
		k := d.edgeKey(h)
		r := read()
		if _, dup := w.Edges[k]; dup && d.err == nil {
			d.fail("duplicate edge %d", i)
		}
		w.Edges[k] = r
	}
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	return w, nil
}

// windowHeader is the part of an encoded window before its series.
type windowHeader struct {
	start, width int64
	strs         []string
	nodes        []Node
}

func (d *decoder) header() windowHeader {
	var h windowHeader
	d.version = d.byte()
	if d.err == nil && (d.version < 1 || d.version > windowFormatVersion) {
		d.fail("unknown format version %d", d.version)
	}
	h.start = d.varint()
	h.width = d.varint()
	if d.err == nil && h.width <= 0 {
		d.fail("window width %d", h.width)
	}
	h.strs = make([]string, d.count("string", 1))
	for i := range h.strs {
		n := d.uvarint()
		if n > uint64(len(d.b)) {
			d.fail("string length %d exceeds the %d bytes left", n, len(d.b))
		}
		h.strs[i] = string(d.bytes(int(n)))
	}
	h.nodes = make([]Node, d.count("node", 6))
	for i := range h.nodes {
		n := &h.nodes[i]
		for _, p := range [...]*string{&n.Service, &n.Instance, &n.Zone, &n.Region, &n.Namespace} {
			*p = d.str(h.strs)
		}
		switch f := d.byte(); f {
		case 0:
		case 1:
			n.Virtual = true
		default:
			d.fail("node flags %#x", f)
		}
	}
	return h
}

func (d *decoder) seriesKey(h windowHeader) SeriesKey {
	k := SeriesKey{Node: d.node(h.nodes), Operation: d.str(h.strs)}
	k.Kind = d.int32("span kind")
	k.Status = d.int32("status")
	return k
}

func (d *decoder) edgeKey(h windowHeader) EdgeKey {
	return EdgeKey{Source: d.node(h.nodes), Target: d.node(h.nodes), Operation: d.str(h.strs)}
}

// end checks that nothing follows the window.
func (d *decoder) end() {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
}

func (d *decoder) int32(what string) int32 {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail("%s %d out of range", what, v)
		return 0
	}
	return int32(v)
}

// rollupCounts reads the counts of a rollup and adds them to r (if not nil).
func (d *decoder) rollupCounts(r *Rollup) (count, errs int64) {
	count = d.nonNeg("count")
	errs = d.nonNeg("error count")
	clamped := d.nonNeg("clamped count")
	if r != nil {
		r.Count = satAdd(r.Count, count)
		r.Errors = satAdd(r.Errors, errs)
		r.Clamped = satAdd(r.Clamped, clamped)
	}
	return count, errs
}

// bucketDst is where decoded buckets go: a packed or a dense histogram
// (neither: they are skipped).
type bucketDst struct {
	packed *hdr.PackedHistogram
	dense  *hdr.Histogram
}

// rollupBody reads the histogram of a rollup into dst and its exemplars
// into r. Values above g.MaxValue are recorded as g.MaxValue and counted
// in r.Clamped. With r nil the body is skipped.
func (d *decoder) rollupBody(g Geometry, r *Rollup, dst bucketDst) {
	if d.version == 1 { // no body length: read it in place
		if r == nil {
			r, dst = &Rollup{}, bucketDst{}
		}
		d.rollupBuckets(g, r, dst)
		d.rollupExemplars(r)
		return
	}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("rollup of %d bytes exceeds the %d bytes left", n, len(d.b))
	}
	body := d.bytes(int(n))
	if r == nil || d.err != nil {
		return
	}
	sub := &decoder{b: body, version: d.version}
	sub.rollupBuckets(g, r, dst)
	sub.rollupExemplars(r)
	sub.rollupEvidence(r)
	sub.end()
	if sub.err != nil && d.err == nil {
		d.err = sub.err
		d.b = nil
	}
}

func (d *decoder) rollupBuckets(g Geometry, r *Rollup, dst bucketDst) {
	nb := d.count("bucket", 2)
	if d.err != nil {
		return
	}
	// The hot loop of queries: varints read from a local slice.
	b := d.b
	var v uint64
	for i := 0; i < nb; i++ {
		delta, n := binary.Uvarint(b)
		if n <= 0 {
			d.fail("bad varint")
			return
		}
		c, m := binary.Uvarint(b[n:])
		if m <= 0 {
			d.fail("bad varint")
			return
		}
		b = b[n+m:]
		if delta > math.MaxInt64-v {
			d.fail("bucket value overflows")
			return
		}
		v += delta
		if c == 0 || c > math.MaxInt64 {
			d.fail("bucket count %d", c)
			return
		}
		val := int64(v)
		if val > g.MaxValue {
			val = g.MaxValue
			r.Clamped = satAdd(r.Clamped, int64(c))
		}
		var err error
		switch {
		case dst.packed != nil:
			err = dst.packed.RecordValues(val, int64(c))
		case dst.dense != nil:
			err = dst.dense.RecordValues(val, int64(c))
		}
		if err != nil {
			d.fail("bucket %d: %v", v, err)
			return
		}
	}
	d.b = b
}

// rollupEvidence reads, from version 4, the retried calls and the failed
// durations by band (ascending, each band at most 63, counts > 0, min ≤
// max).
func (d *decoder) rollupEvidence(r *Rollup) {
	if d.version < 4 {
		return
	}
	// Added to what r holds: accumulators decode many windows' rollups
	// into one.
	r.Retried = satAdd(r.Retried, d.nonNeg("retried"))
	n := d.count("failed band", 4)
	prev := -1
	for i := 0; i < n && d.err == nil; i++ {
		band := d.uvarint()
		count := d.uvarint()
		lo, hi := d.varint(), d.varint()
		if d.err != nil {
			return
		}
		switch {
		case band > 63 || int(band) <= prev:
			d.fail("failed band %d after %d", band, prev)
		case count == 0 || count > math.MaxInt64:
			d.fail("failed band count %d", count)
		case lo < 0 || hi < lo:
			d.fail("failed band durations [%d, %d]", lo, hi)
		default:
			prev = int(band)
			r.addFailed(FailedBand{Band: int(band), Count: int64(count), Min: lo, Max: hi})
		}
	}
}

// rollupExemplars reads the exemplar lists of a rollup body into r: the
// slowest, and from version 3 the spread and the failing ones, each
// exemplar with a flags byte (1: error; other bits must be 0).
func (d *decoder) rollupExemplars(r *Rollup) {
	lists := 1
	if d.version >= 3 {
		lists = 3
	}
	for l := 0; l < lists && d.err == nil; l++ {
		nx := d.count("exemplar", 26)
		for i := 0; i < nx && d.err == nil; i++ {
			var ex Exemplar
			copy(ex.TraceID[:], d.bytes(16))
			copy(ex.SpanID[:], d.bytes(8))
			ex.Value = d.varint()
			ex.Time = d.varint()
			if d.version >= 3 {
				switch f := d.byte(); {
				case f&^1 != 0:
					d.fail("exemplar flags %#x", f)
				default:
					ex.Error = f == 1
				}
			}
			if d.err != nil {
				break
			}
			switch l {
			case 0:
				r.addExemplar(ex)
			case 1:
				r.addSpread(ex)
			case 2:
				r.addErrorExemplar(ex)
			}
		}
	}
}
