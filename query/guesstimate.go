package query

import (
	"bytes"
	"context"
	"encoding/json"
	"math/bits"
	"strconv"
	"strings"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/flowscope/flowscope/aggregate"
)

// Guesstimate export (GetLatency with format=guesstimate).
//
// The export is what spigo writes to json_metrics/<arch>.guess: a
// Guesstimate space with one metric, named with a spigo actor name, and
// one DATA guesstimate holding latency samples in nanoseconds. Only
// histograms are stored, so the samples are made from the HDR buckets:
// every timed span gives one sample, the highest value equivalent to its
// bucket (the value the API's quantiles report), when there are at most
// the sample limit of them; a bigger distribution is down-sampled along
// its quantile function (see guessSamples). Either way the samples are in
// ascending order.
//
// The actor name is one that package ingest/spigo (ParseName) maps back to
// the selection's service, and instance at the instance level (see
// guessNode). spigo's importer turns the file into the metric spigo.latency
// of that resource.

// guessPackage is the package part of the actor name of a service export.
const guessPackage = "flowscope"

// guessMetricID is the id, readableId and cell of the one metric.
const guessMetricID = "AA"

// guessSuffixes are the endings spigo's importer splits off a metric name
// as a traffic generator's histogram (spigo.SplitGuessName).
var guessSuffixes = [...]string{"_resp", "_serv", "_net", "_rt"}

// guessNode holds the parts of the spigo actor name of an export:
// arch.region.zone.machine.instance.container.process.service.package, of
// which machine, container and process stay empty.
type guessNode struct {
	arch, region, zone, instance, service string
}

// guesstimate writes lat, selected by p, as a spigo Guesstimate space:
//
//	{"space":{"name","description","is_private":"true","graph":{
//	  "metrics":[{"id","readableId","name","location":{"row","column"}}],
//	  "guesstimates":[{"metric","input":"","guesstimateType":"DATA","data":[…]}]}}}
//
// with the keys in the order of spigo's files. A distribution without
// timed spans gives an empty data array. The flow graph of the range is
// read to name the actor (see Service.guessNode).
func (s *Service) guesstimate(ctx context.Context, lat *aggregate.Latency, p latencyParams) (string, error) {
	n, err := s.guessNode(ctx, p)
	if err != nil {
		return "", err
	}
	pkg := guessPackage
	if p.q.Service == "" {
		pkg = p.q.Source + "->" + p.q.Target
	}
	space := p.arch
	if space == "" {
		space = p.q.Service
		if space == "" {
			space = p.q.Source + "->" + p.q.Target
		}
	}
	desc := "Flowscope latency export " + formatTime(p.start) + "/" + formatTime(p.end)
	samples := guessSamples(newDistribution(lat.Total.Hist).bars, p.samples)
	return writeGuess(space, desc, n.actorName(pkg), samples), nil
}

// guessNode resolves the node the export is named after — the service,
// or the edge's target — in the flow graph of the range at its level: a
// node whose ID is the selection, else the one node whose plain name
// (without "namespace/") it is. From it come the namespace (the arch part),
// the service of an instance and the instance's region. A selection that
// names no node, or nodes of several namespaces, is used as it is, without
// a namespace.
func (s *Service) guessNode(ctx context.Context, p latencyParams) (guessNode, error) {
	level, sel := aggregate.LevelService, p.q.Service
	if sel == "" {
		level, sel = p.q.Level, p.q.Target
	}
	g, err := s.st.FlowGraph(ctx, p.start, p.end, aggregate.GraphQuery{Level: level})
	if err != nil {
		return guessNode{}, s.storeError(ctx, "flow graph", err)
	}
	var node *aggregate.GraphNode
	if g != nil {
		node = findGuessNode(g.Nodes, sel)
	}
	n := guessNode{arch: p.arch, region: "*", zone: "*", service: sel}
	if node != nil && node.Namespace != "" {
		n.arch = node.Namespace
	}
	plain := func(id string) string {
		if node != nil && node.Namespace != "" {
			return strings.TrimPrefix(id, node.Namespace+"/")
		}
		return id
	}
	if node != nil {
		n.service = plain(node.ID)
	}
	switch {
	case node != nil && node.Virtual:
		// An uninstrumented callee has its one name at every level.
	case level == aggregate.LevelInstance:
		n.instance = n.service
		if node != nil && node.Service != "" {
			n.service = plain(node.Service)
		}
		if node != nil && node.Region != "" {
			n.region = node.Region
		}
	case level == aggregate.LevelZone:
		n.zone = sel
	case level == aggregate.LevelRegion:
		n.region = sel
	case level == aggregate.LevelNamespace:
		n.arch = sel
	}
	return n, nil
}

// findGuessNode returns the node of nodes whose ID is sel, else the only
// one whose plain name is sel, else nil.
func findGuessNode(nodes []aggregate.GraphNode, sel string) *aggregate.GraphNode {
	var byName *aggregate.GraphNode
	matches := 0
	for i := range nodes {
		nd := &nodes[i]
		if nd.ID == sel {
			return nd
		}
		if nd.Namespace != "" && nd.ID == nd.Namespace+"/"+sel {
			byName = nd
			matches++
		}
	}
	if matches == 1 {
		return byName
	}
	return nil
}

// actorName returns the spigo actor name of n with package pkg:
// arch.region.zone..instance...service.package. Dots in pkg become "_",
// and pkg gets a trailing "_" when it would end like a traffic
// generator's histogram suffix (_resp, _serv, _net, _rt), so that the
// importer reads the whole name as the actor. When another part holds a
// dot, a 9-part name cannot carry it: the plain service name is returned,
// which the importer maps to service.name alone (unless it happens to have
// the shape of a spigo name itself).
func (n guessNode) actorName(pkg string) string {
	pkg = strings.ReplaceAll(pkg, ".", "_")
	for _, suf := range guessSuffixes {
		if strings.HasSuffix(pkg, suf) {
			pkg += "_"
			break
		}
	}
	parts := [...]string{n.arch, n.region, n.zone, "", n.instance, "", "", n.service, pkg}
	for _, part := range parts[:8] {
		if strings.Contains(part, ".") {
			return n.service
		}
	}
	return strings.Join(parts[:], ".")
}

// guessSamples returns latency samples (ns, ascending) that reproduce the
// distribution of the non-empty HDR buckets bars: each bucket's highest
// equivalent value To, Count times, when the buckets count at most limit
// values in all. Above that, exactly limit samples along the quantile
// function: sample i of N = limit is the value at quantile (i+0.5)/N,
// the nearest-rank value of rank ceil((i+0.5)/N · total), as the API's
// quantiles are read. So the samples' quantiles are the histogram's, at
// its precision, to within 1/(2N) of a quantile. It returns an empty,
// non-nil slice without values.
func guessSamples(bars []hdr.Bar, limit int) []int64 {
	var total uint64
	for _, b := range bars {
		total += uint64(b.Count)
	}
	if total <= uint64(limit) {
		out := make([]int64, 0, total)
		for _, b := range bars {
			for range b.Count {
				out = append(out, b.To)
			}
		}
		return out
	}
	out := make([]int64, 0, limit)
	n2 := 2 * uint64(limit)
	var cum uint64 // values in bars[:j]
	j := 0
	for i := range uint64(limit) {
		// rank = ceil((2i+1)·total / 2N), in 128 bits: (2i+1)·total
		// overflows 64 bits for big totals; the quotient is < total.
		hi, lo := bits.Mul64(2*i+1, total)
		lo, carry := bits.Add64(lo, n2-1, 0)
		hi += carry
		rank, _ := bits.Div64(hi, lo, n2)
		rank = max(rank, 1)
		for cum+uint64(bars[j].Count) < rank {
			cum += uint64(bars[j].Count)
			j++
		}
		out = append(out, bars[j].To)
	}
	return out
}

// writeGuess encodes a Guesstimate space of one metric named actor with
// one DATA guesstimate of samples, in spigo's key order.
func writeGuess(space, desc, actor string, samples []int64) string {
	var b bytes.Buffer
	b.Grow(256 + 10*len(samples))
	b.WriteString(`{"space":{"name":`)
	writeJSONString(&b, space)
	b.WriteString(`,"description":`)
	writeJSONString(&b, desc)
	b.WriteString(`,"is_private":"true","graph":{"metrics":[{"id":"` + guessMetricID + `","readableId":"` + guessMetricID + `","name":`)
	writeJSONString(&b, actor)
	b.WriteString(`,"location":{"row":1,"column":1}}],"guesstimates":[{"metric":"` + guessMetricID +
		`","input":"","guesstimateType":"DATA","data":[`)
	var num []byte
	for i, v := range samples {
		if i > 0 {
			b.WriteByte(',')
		}
		num = strconv.AppendInt(num[:0], v, 10)
		b.Write(num)
	}
	b.WriteString(`]}]}}}`)
	return b.String()
}

// writeJSONString writes s as a JSON string, without HTML escaping (so
// that "->" stays readable).
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a string always encodes
	b.Truncate(b.Len() - 1) // Encode's newline
}

// guessFileName returns the file name of a Guesstimate export from the
// space name at the start of doc (as writeGuess writes it): the name with
// "->" spelled "-to-" and every character but ASCII letters, digits, '.',
// '-' and '_' replaced by '_', plus ".guess"; "latency.guess" when doc
// names no space.
func guessFileName(doc string) string {
	dec := json.NewDecoder(strings.NewReader(doc))
	var name string
	for _, want := range []any{json.Delim('{'), "space", json.Delim('{'), "name"} {
		if t, err := dec.Token(); err != nil || t != want {
			return "latency.guess"
		}
	}
	if t, err := dec.Token(); err == nil {
		name, _ = t.(string)
	}
	name = strings.ReplaceAll(name, "->", "-to-")
	clean := []byte(name)
	for i, c := range clean {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			clean[i] = '_'
		}
	}
	if len(clean) == 0 || strings.Trim(string(clean), ".") == "" {
		return "latency.guess"
	}
	return string(clean) + ".guess"
}
