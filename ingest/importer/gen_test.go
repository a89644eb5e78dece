package importer

import (
	"fmt"
	"io"
)

// flowGen generates a spigo-format Zipkin v1 flow file lazily, like
// lamp_flow.json: traces of four spans, www → webserver-elb →
// webserver → {rds-mysql, memcache}, each a complete cs/sr/ss/cr hop
// between 9-part spigo names, with "%016d" counter IDs, one span object
// per line with leading commas.
type flowGen struct {
	traces int // traces to write
	n      int // traces written
	nextID int
	buf    []byte
	done   bool
}

// flowSpansPerTrace is the number of span objects of a generated trace.
const flowSpansPerTrace = 4

// newFlowGen returns a generator of at least spans span objects.
func newFlowGen(spans int) *flowGen {
	return &flowGen{traces: (spans + flowSpansPerTrace - 1) / flowSpansPerTrace}
}

func (g *flowGen) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		if g.done {
			return 0, io.EOF
		}
		g.fill()
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

var zones = [...]string{"zoneA", "zoneB", "zoneC"}

// fill generates the next trace (or the end of the array).
func (g *flowGen) fill() {
	b := g.buf[:0]
	if g.n == 0 {
		b = append(b, "[\n"...)
	}
	if g.n == g.traces {
		g.buf, g.done = append(b, "\n]\n"...), true
		return
	}
	if g.n > 0 {
		b = append(b, "\n,"...)
	}
	web := g.n % 18
	mysql := g.n % 2
	names := [...]string{
		"lamp.*.*..www00...www.denominator",
		"lamp.us-east-1.*..webserver-elb00...webserver-elb.elb",
		fmt.Sprintf("lamp.us-east-1.%s..webserver%02d...webserver.monolith", zones[web%3], web),
		fmt.Sprintf("lamp.us-east-1.%s..rds-mysql%02d...rds-mysql.store", zones[mysql], mysql),
		"lamp.us-east-1.zoneA..memcache00...memcache.store",
	}
	ts := int64(1463590172000000) + int64(g.n)*10_000 // a trace every 10 ms, in µs
	root := g.nextID + 1
	g.nextID += flowSpansPerTrace
	// hop: caller, callee, parent offset (-1: root), start, length (µs)
	hops := [flowSpansPerTrace]struct {
		client, server, parent int
		start, length          int64
	}{
		{0, 1, -1, 0, 9000},
		{1, 2, 0, 20, 8900},
		{2, 3, 1, 60, 5000},
		{2, 4, 1, 5100, 3000},
	}
	for i, h := range hops {
		if i > 0 {
			b = append(b, "\n,"...)
		}
		name := "GetRequest"
		b = fmt.Appendf(b, `{"traceId":"%016d","name":"%s","id":"%016d"`, root, name, root+i)
		if h.parent >= 0 {
			b = fmt.Appendf(b, `,"parentId":"%016d"`, root+h.parent)
		}
		c, s := names[h.client], names[h.server]
		t := ts + h.start
		ann := func(svc string, ip int, at int64, v string) {
			b = fmt.Appendf(b, `{"endpoint":{"serviceName":"%s","ipv4":"54.198.0.%d","port":8080},"timestamp":%d,"value":"%s"}`, svc, ip, at, v)
		}
		b = append(b, `,"annotations":[`...)
		ann(c, h.client, t, "cs")
		b = append(b, ',')
		ann(s, h.server, t+9, "sr")
		b = append(b, ',')
		ann(s, h.server, t+h.length-9, "ss")
		b = append(b, ',')
		ann(c, h.client, t+h.length, "cr")
		b = append(b, "]}"...)
	}
	g.n++
	g.buf = b
}

// flowInput returns an Input generating a flow file of at least spans
// span objects, and its size.
func flowInput(spans int) Input {
	size, _ := io.Copy(io.Discard, newFlowGen(spans))
	return Input{
		Name: fmt.Sprintf("generated_%d_flow.json", spans),
		Size: size,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(newFlowGen(spans)), nil },
	}
}
