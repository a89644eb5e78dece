package spigo

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Graph is a spigo graph JSON file (json/<arch>.json, versions spigo-0.3
// and spigo-0.4): the architecture as registered through service
// discovery, one node per actor and one edge per dependency between two
// actors. Edges removed by a "forget" element are not in Edges.
type Graph struct {
	Arch    string // "arch": the architecture name
	Version string // "version": spigo-0.3 or spigo-0.4
	Args    string // "args": the command line, in Go's fmt rendering
	Date    string // "date": when the run started, RFC 3339
	// Nodes in file order; a node declared twice is kept once, at its
	// first position, with the fields of its last declaration.
	Nodes []GraphNode
	// Edges in file order, without the forgotten ones.
	Edges []GraphEdge
	// Done counts "done" elements (actors that exited).
	Done int
	// Forgotten counts "forget" elements.
	Forgotten int
	// Unknown counts elements of no known kind, which are ignored.
	Unknown int
}

// GraphNode is a graph node: an actor, named by a filtered spigo name.
type GraphNode struct {
	// Name is the node name as written, e.g. lamp.us-east-1.zoneA.webserver00.
	Name     string
	Arch     string // architecture (service.namespace)
	Region   string // region, or "*" for cross-region actors
	Zone     string // zone, or "*" for cross-zone actors
	Instance string // instance label, e.g. webserver00; empty for collapsed (-f) names
	Service  string // service name, e.g. webserver
	Package  string // the Go package implementing the actor, e.g. monolith
	// Metadata is the node's "metadata" field ("IP/<addr>").
	Metadata string
	// Timestamp is when the node was declared; zero when the element has
	// no timestamp.
	Timestamp time.Time
}

// GraphEdge is a registered dependency: Source calls Target. Source and
// Target are node names.
type GraphEdge struct {
	ID             string // "edge": e<n>
	Source, Target string
	// Timestamp is when the edge was registered; zero when the element has
	// no timestamp.
	Timestamp time.Time
}

// DeclaredEdge is a declared dependency between two nodes of a level of
// the flow-graph hierarchy: Source calls Target.
type DeclaredEdge struct {
	Source, Target string
}

// Levels of the flow-graph hierarchy accepted by Graph.Declared and
// Graph.NodeIDs (the names aggregate.ParseLevel accepts).
const (
	LevelService   = "service"
	LevelInstance  = "instance"
	LevelZone      = "zone"
	LevelRegion    = "region"
	LevelNamespace = "namespace"
)

// ParseGraphNode parses a graph node name. spigo filters actor names for
// its graph output in one of two ways:
//
//   - by default arch.region.zone.instance (lamp.us-east-1.zoneA.webserver00,
//     lamp.*.*.www00); the service is the instance label without the index
//     spigo appended to it (see InstanceService): webserver-elb00 →
//     webserver-elb, content-s300 → content-s3;
//   - with -f arch.region.zone.service.package
//     (lamp.us-east-1.zoneA.webserver.monolith), one node per service and
//     zone, without an instance.
//
// Every part must be non-empty. The Package of a 4-part name is empty; the
// graph's "package" field supplies it. A label whose index has three digits
// or more is ambiguous on its own (homepage123 is homepage's instance 123,
// or homepage1's instance 23): ParseGraphNode reads the last two digits as
// the index, and ReadGraph decides with the graph's other nodes.
func ParseGraphNode(name string) (GraphNode, error) {
	p := strings.Split(name, ".")
	for i, s := range p {
		if s == "" {
			return GraphNode{}, fmt.Errorf("node name %q: part %d is empty", clip(name), i+1)
		}
	}
	n := GraphNode{Name: name}
	switch len(p) {
	case 4:
		n.Arch, n.Region, n.Zone, n.Instance = p[0], p[1], p[2], p[3]
		n.Service = InstanceService(n.Instance)
	case 5:
		n.Arch, n.Region, n.Zone, n.Service, n.Package = p[0], p[1], p[2], p[3], p[4]
	default:
		return GraphNode{}, fmt.Errorf("node name %q has %d parts, want arch.region.zone.instance or arch.region.zone.service.package", clip(name), len(p))
	}
	return n, nil
}

// Instance labels.
//
// spigo names an instance after its service and an index that counts the
// service's instances from 0: fmt "%s%02d" since April 2016
// (tooling/names; testdata/spigo/README.md §1: webserver10, www00,
// homepage123), "%s%d" before (mysql0, blackbeard7). The service name may
// itself end in digits (contentMetadataS3 → contentMetadataS300), so the
// index is a suffix of the label's trailing digits, not all of them: one
// digit, two digits, or more digits not starting with 0 (an index that
// %02d and %d write). A label of digits only is its own service.

// indexLens returns the lengths of the suffixes of label that can be the
// index spigo appended to a service name (see above), shortest first; nil
// when label does not end in a digit or is all digits.
func indexLens(label string) []int {
	run := 0
	for run < len(label) && isDigit(label[len(label)-1-run]) {
		run++
	}
	if run == 0 || run == len(label) {
		return nil
	}
	var out []int
	for k := 1; k <= run; k++ {
		idx := label[len(label)-k:]
		if k <= 2 || idx[0] != '0' {
			out = append(out, k)
		}
	}
	return out
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// InstanceService returns the service of an instance label read on its
// own: the label without the index spigo appended to it, read as two
// digits when it has two or more (%02d; contentMetadataS300 →
// contentMetadataS3, webserver10 → webserver) and one otherwise (2015's
// blackbeard7 → blackbeard). A label without a trailing digit, or of digits
// only, is its own service. An index of three digits or more (homepage123)
// needs the label's siblings to be told apart; ReadGraph does that.
func InstanceService(label string) string {
	lens := indexLens(label)
	if len(lens) == 0 {
		return label
	}
	k := 1
	if len(lens) > 1 {
		k = 2
	}
	return label[:len(label)-k]
}

// resolveServices decides the service of every node whose instance label
// has more than one reading (see indexLens), with the graph's other nodes:
// spigo numbers every service's instances from 0, so the service is the
// shortest prefix S for which the architecture has a node S00 (or S0) of
// the same package. contentMetadataS300 is contentMetadataS3's instance 0
// unless a contentMetadataS00 exists; homepage123 is homepage's instance 123
// when homepage00 exists. Without such a node ParseGraphNode's reading
// stays.
func (gr *graphReader) resolveServices() {
	g := gr.g
	type label struct{ arch, instance string }
	pkg := make(map[label]string, len(g.Nodes))
	for i := range g.Nodes {
		if n := &g.Nodes[i]; n.Instance != "" {
			pkg[label{n.Arch, n.Instance}] = n.Package
		}
	}
	first := func(n *GraphNode, service string) bool {
		for _, idx := range [...]string{"00", "0"} {
			p, ok := pkg[label{n.Arch, service + idx}]
			if ok && (p == "" || n.Package == "" || p == n.Package) {
				return true
			}
		}
		return false
	}
	for i := range g.Nodes {
		n := &g.Nodes[i]
		lens := indexLens(n.Instance)
		if len(lens) < 2 {
			continue
		}
		for j := len(lens) - 1; j >= 0; j-- {
			if s := n.Instance[:len(n.Instance)-lens[j]]; first(n, s) {
				n.Service = s
				break
			}
		}
	}
}

// graphElem is one element of the graph array. The kind is the one of
// node, edge, forget and done that is present.
type graphElem struct {
	Node      *string `json:"node"`
	Edge      *string `json:"edge"`
	Forget    *string `json:"forget"`
	Done      *string `json:"done"`
	Package   *string `json:"package"`
	Service   *string `json:"service"` // spigo-0.3 name of package
	Source    string  `json:"source"`
	Target    string  `json:"target"`
	Metadata  string  `json:"metadata"`
	Timestamp *string `json:"timestamp"`
}

// graphReader holds the state of ReadGraph.
type graphReader struct {
	j       *jsonReader
	g       *Graph
	nodes   map[string]int // name → index in g.Nodes
	edges   map[string]int // id → index in g.Edges
	edgePos []elemPos      // position of each edge of g.Edges
	dead    []bool         // forgotten edges of g.Edges
	elem    int            // elements read so far
}

// elemPos is the position of a graph element: its index in the graph
// array and its byte offset.
type elemPos struct {
	index int
	off   int64
}

// ReadGraph reads a spigo graph JSON file. It streams the graph array
// element by element, so the file is never held in memory whole. The
// top-level keys may come in any order; unknown keys (at the top level and
// in elements) are ignored, as are elements of no known kind. Elements of
// kind node, edge, forget (removes the edge of that id, or else the latest
// edge between its source and target) and done are accepted; spigo-0.3's
// "service" field stands for "package". Timestamps must be RFC 3339 with
// any number of fractional digits. Every remaining edge's endpoints must be
// declared nodes (anywhere in the file).
//
// Errors name the element (its index in the graph array) and its byte
// offset, and wrap ingest.ErrInvalid unless reading r failed.
func ReadGraph(r io.Reader) (*Graph, error) {
	gr := &graphReader{
		j:     newJSONReader(r, "spigo graph"),
		g:     &Graph{},
		nodes: make(map[string]int),
		edges: make(map[string]int),
	}
	if err := gr.read(); err != nil {
		return nil, err
	}
	return gr.finish()
}

func (gr *graphReader) read() error {
	j, g := gr.j, gr.g
	if _, err := j.open('{', "graph file", false); err != nil {
		return err
	}
	for j.dec.More() {
		key, off, err := j.key("graph file key")
		if err != nil {
			return err
		}
		switch key {
		case "arch":
			g.Arch, err = j.str(`"arch"`)
		case "version":
			g.Version, err = j.str(`"version"`)
		case "args":
			g.Args, err = j.str(`"args"`)
		case "date":
			vOff := j.nextOffset()
			if g.Date, err = j.str(`"date"`); err == nil && g.Date != "" {
				if _, perr := time.Parse(time.RFC3339Nano, g.Date); perr != nil {
					err = j.failf(vOff, `"date": %v`, perr)
				}
			}
		case "graph":
			err = gr.readElems()
		default:
			err = j.skip(fmt.Sprintf("value of key %q (byte %d)", clip(key), off))
		}
		if err != nil {
			return err
		}
	}
	if err := j.close("end of graph file"); err != nil {
		return err
	}
	return j.end()
}

func (gr *graphReader) readElems() error {
	j := gr.j
	ok, err := j.open('[', `"graph"`, true)
	if err != nil || !ok {
		return err
	}
	for j.dec.More() {
		pos := elemPos{index: gr.elem, off: j.nextOffset()}
		gr.elem++
		var e graphElem
		if err := j.decode(&e, fmt.Sprintf("graph element %d", pos.index)); err != nil {
			return err
		}
		if err := gr.add(&e, pos); err != nil {
			return err
		}
	}
	return j.close(`end of "graph"`)
}

// add applies one element.
func (gr *graphReader) add(e *graphElem, pos elemPos) error {
	g := gr.g
	kinds := 0
	for _, k := range []*string{e.Node, e.Edge, e.Forget, e.Done} {
		if k != nil {
			kinds++
		}
	}
	if kinds > 1 {
		return gr.failf(pos, "has more than one of node, edge, forget and done")
	}
	var ts time.Time
	if e.Timestamp != nil {
		t, err := time.Parse(time.RFC3339Nano, *e.Timestamp)
		if err != nil {
			return gr.failf(pos, "timestamp: %v", err)
		}
		ts = t
	}
	switch {
	case e.Node != nil:
		n, err := ParseGraphNode(*e.Node)
		if err != nil {
			return gr.failf(pos, "%v", err)
		}
		switch {
		case e.Package != nil:
			n.Package = *e.Package
		case e.Service != nil:
			n.Package = *e.Service
		}
		n.Metadata, n.Timestamp = e.Metadata, ts
		if i, ok := gr.nodes[n.Name]; ok {
			g.Nodes[i] = n
			return nil
		}
		gr.nodes[n.Name] = len(g.Nodes)
		g.Nodes = append(g.Nodes, n)
	case e.Edge != nil:
		id := *e.Edge
		if id == "" {
			return gr.failf(pos, "edge has an empty id")
		}
		if i, ok := gr.edges[id]; ok {
			return gr.failf(pos, "edge %q: id already used by graph element %d", clip(id), gr.edgePos[i].index)
		}
		if e.Source == "" || e.Target == "" {
			return gr.failf(pos, "edge %q: source or target is missing", clip(id))
		}
		gr.edges[id] = len(g.Edges)
		g.Edges = append(g.Edges, GraphEdge{ID: id, Source: e.Source, Target: e.Target, Timestamp: ts})
		gr.edgePos = append(gr.edgePos, pos)
		gr.dead = append(gr.dead, false)
	case e.Forget != nil:
		g.Forgotten++
		if i, ok := gr.edges[*e.Forget]; ok {
			gr.dead[i] = true
			return nil
		}
		// spigo writes the id it remembers for the source/target pair; an
		// id it never wrote falls back to the pair.
		for i := len(g.Edges) - 1; i >= 0; i-- {
			if !gr.dead[i] && g.Edges[i].Source == e.Source && g.Edges[i].Target == e.Target {
				gr.dead[i] = true
				break
			}
		}
	case e.Done != nil:
		g.Done++
	default:
		g.Unknown++
	}
	return nil
}

func (gr *graphReader) failf(pos elemPos, format string, a ...any) error {
	return gr.j.failf(pos.off, "graph element %d: %s", pos.index, fmt.Sprintf(format, a...))
}

// finish drops forgotten edges, checks the endpoints of the others and
// decides the services of ambiguous instance labels.
func (gr *graphReader) finish() (*Graph, error) {
	g := gr.g
	gr.resolveServices()
	live := g.Edges[:0]
	for i, e := range g.Edges {
		if gr.dead[i] {
			continue
		}
		for _, end := range [...]struct{ role, name string }{{"source", e.Source}, {"target", e.Target}} {
			if _, ok := gr.nodes[end.name]; !ok {
				return nil, gr.failf(gr.edgePos[i], "edge %q: %s %q is not a declared node", clip(e.ID), end.role, clip(end.name))
			}
		}
		live = append(live, e)
	}
	clear(g.Edges[len(live):])
	g.Edges = live
	return g, nil
}

// ID returns the node's identity at a level of the flow-graph hierarchy:
// service → Service; instance → Instance (Service for collapsed names,
// as the flow graph falls back to the service for spans without
// service.instance.id); zone → Zone; region → Region; namespace → Arch.
// "" stands for service. ok is false for an unknown level.
func (n *GraphNode) ID(level string) (id string, ok bool) {
	switch level {
	case LevelService, "":
		return n.Service, true
	case LevelInstance:
		if n.Instance != "" {
			return n.Instance, true
		}
		return n.Service, true
	case LevelZone:
		return n.Zone, true
	case LevelRegion:
		return n.Region, true
	case LevelNamespace:
		return n.Arch, true
	}
	return "", false
}

// Declared returns the declared dependencies between the nodes of level
// (see GraphNode.ID), deduplicated and sorted by source, then target.
// Self-edges at the level (zoneA → zoneA) are kept, as in the flow graph.
// It returns nil for an unknown level.
func (g *Graph) Declared(level string) []DeclaredEdge {
	if _, ok := (&GraphNode{}).ID(level); !ok {
		return nil
	}
	byName := make(map[string]*GraphNode, len(g.Nodes))
	for i := range g.Nodes {
		byName[g.Nodes[i].Name] = &g.Nodes[i]
	}
	seen := make(map[DeclaredEdge]bool)
	out := []DeclaredEdge{}
	for _, e := range g.Edges {
		s, t := byName[e.Source], byName[e.Target]
		if s == nil || t == nil {
			continue
		}
		sid, _ := s.ID(level)
		tid, _ := t.ID(level)
		d := DeclaredEdge{sid, tid}
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	slices.SortFunc(out, compareDeclared)
	return out
}

// NodeIDs returns the distinct identities of the graph's nodes at level
// (see GraphNode.ID), sorted. It returns nil for an unknown level.
func (g *Graph) NodeIDs(level string) []string {
	if _, ok := (&GraphNode{}).ID(level); !ok {
		return nil
	}
	out := make([]string, 0, len(g.Nodes))
	for i := range g.Nodes {
		id, _ := g.Nodes[i].ID(level)
		out = append(out, id)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func compareDeclared(a, b DeclaredEdge) int {
	return cmp.Or(strings.Compare(a.Source, b.Source), strings.Compare(a.Target, b.Target))
}
