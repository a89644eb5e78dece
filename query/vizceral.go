package query

import (
	"cmp"
	"encoding/json"
	"slices"
	"time"

	"github.com/flowscope/flowscope/aggregate"
)

// Vizceral output of the flow graph (GetFlowGraph with format=vizceral).
//
// Vizceral (github.com/Netflix/vizceral) renders a traffic graph given as one
// JSON document with three levels, each node carrying a name and a renderer:
//
//	{"renderer": "global", "name": "edge", "maxVolume": …,
//	 "nodes": [                                    // regions
//	   {"renderer": "region", "name": "us-east-1", "class": "normal", "updated": <Unix ms>, "maxVolume": …,
//	    "nodes": [{"renderer": "focusedChild", "name": "checkout", "class": "normal", "nodes": []}, …],
//	    "connections": [{"source": "frontend", "target": "checkout",
//	                     "metrics": {"normal": <ok calls/s>, "danger": <failed calls/s>}, "class": "normal"}, …]},
//	   …],
//	 "connections": [{"source": "INTERNET", "target": "us-east-1", "metrics": {…}, "class": "normal"}, …]}
//
// The mapping, following Vizceral's sample data:
//
//   - Nodes are grouped into regions by aggregate.GraphNode.Region ("unknown"
//     when empty). At level=region every graph node is a region of its own
//     (with no inner nodes) and every edge between two regions a global
//     connection.
//   - A virtual node has no region: it is drawn in the region of each of its
//     callers, so that calls into a database stay inside the caller's region
//     (and in "unknown" when nothing calls it).
//   - An edge between two nodes of one region is a connection of that region;
//     an edge between regions adds to the global connection between them.
//     Calls from a node to itself are left out: Vizceral cannot draw them.
//   - Entry points, the nodes with requests but no incoming edge, are called
//     from a node named INTERNET in their region, and the sum of their
//     traffic flows from a global INTERNET node into the region. INTERNET
//     nodes exist only where they have connections.
//   - Metrics are per second over the range: "normal" the calls (or
//     requests) that succeeded, "danger" those with status ERROR.
//   - class is "danger" at an error fraction of VizceralDangerErrorRate or
//     more, "warning" at VizceralWarningErrorRate or more, else "normal"; a
//     region takes the worst class of its nodes.
//   - maxVolume is the largest normal+danger of the connections at that
//     level; "updated" is the end of the range in Unix milliseconds.
//
// Names are used as they are, so a service or region literally named
// INTERNET would share the entry node.

// Error fractions from which Vizceral nodes and connections get the class
// "warning" and "danger".
const (
	VizceralWarningErrorRate = 0.01
	VizceralDangerErrorRate  = 0.05
)

// Names used in the Vizceral document.
const (
	vizInternet      = "INTERNET"
	vizUnknownRegion = "unknown"
)

// vizGraph is the top ("global") level of a Vizceral traffic graph.
type vizGraph struct {
	Renderer    string           `json:"renderer"`
	Name        string           `json:"name"`
	MaxVolume   float64          `json:"maxVolume"`
	Nodes       []*vizRegion     `json:"nodes"`
	Connections []*vizConnection `json:"connections"`
}

// vizRegion is a node of the global level: a region holding services.
type vizRegion struct {
	Renderer    string           `json:"renderer"`
	Name        string           `json:"name"`
	Class       string           `json:"class"`
	Updated     int64            `json:"updated"`
	MaxVolume   float64          `json:"maxVolume"`
	Nodes       []*vizNode       `json:"nodes"`
	Connections []*vizConnection `json:"connections"`

	byName map[string]*vizNode
}

// vizNode is a node of a region (a service, instance, zone or namespace).
type vizNode struct {
	Renderer string     `json:"renderer"`
	Name     string     `json:"name"`
	Class    string     `json:"class"`
	Nodes    []*vizNode `json:"nodes"`
}

// vizConnection is traffic from source to target, per second.
type vizConnection struct {
	Source  string     `json:"source"`
	Target  string     `json:"target"`
	Metrics vizMetrics `json:"metrics"`
	Class   string     `json:"class"`
}

// vizMetrics splits a connection's traffic by outcome, per second.
type vizMetrics struct {
	Normal float64 `json:"normal"`
	Danger float64 `json:"danger"`
}

// vizTraffic accumulates counts for a connection.
type vizTraffic struct{ count, errors int64 }

// vizClass returns the class of traffic with this error fraction.
func vizClass(errorRate float64) string {
	switch {
	case errorRate >= VizceralDangerErrorRate:
		return "danger"
	case errorRate >= VizceralWarningErrorRate:
		return "warning"
	}
	return "normal"
}

// worseClass returns the worse of two classes.
func worseClass(a, b string) string {
	rank := func(c string) int {
		switch c {
		case "danger":
			return 2
		case "warning":
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// vizBuilder builds a Vizceral document from a graph.
type vizBuilder struct {
	g       *aggregate.Graph
	level   aggregate.Level
	updated int64
	regions map[string]*vizRegion
	// home is the region of each node: its own region, or for a virtual
	// node the first region it was drawn in.
	home map[string]string
	// class is the Vizceral class of each graph node, by ID.
	class map[string]string
}

// vizceralJSON returns g as Vizceral traffic-graph JSON (see the comment at
// the top of this file). g must be sorted (sortGraph); end is the end of the
// queried range.
func vizceralJSON(g *aggregate.Graph, level aggregate.Level, end time.Time) ([]byte, error) {
	b := &vizBuilder{
		g:       g,
		level:   level,
		updated: end.UnixMilli(),
		regions: make(map[string]*vizRegion),
		home:    make(map[string]string),
		class:   make(map[string]string, len(g.Nodes)),
	}
	return json.Marshal(b.build())
}

func (b *vizBuilder) build() *vizGraph {
	g := b.g
	hasCaller := make(map[string]bool)
	virtual := make(map[string]bool)
	for i := range g.Nodes {
		n := &g.Nodes[i]
		b.class[n.ID] = vizClass(fraction(n.Requests.Errors, n.Requests.Count))
		if n.Virtual {
			virtual[n.ID] = true
			continue
		}
		b.place(n.ID, b.nodeRegion(n))
	}

	// Edges inside a region, and traffic between regions.
	global := make(map[[2]string]*vizTraffic)
	for i := range g.Edges {
		e := &g.Edges[i]
		if e.Source == e.Target {
			continue
		}
		hasCaller[e.Target] = true
		src := b.homeOf(e.Source)
		dst := src
		if b.level != aggregate.LevelRegion && (e.Virtual || virtual[e.Target]) {
			b.place(e.Target, src)
		} else {
			dst = b.homeOf(e.Target)
		}
		if src == dst && b.level != aggregate.LevelRegion {
			r := b.regions[src]
			r.Connections = append(r.Connections, b.connection(e.Source, e.Target, e.Calls.Count, e.Calls.Errors))
			continue
		}
		addTraffic(global, src, dst, e.Calls.Count, e.Calls.Errors)
	}

	// Virtual nodes nobody calls (none, normally) still get drawn.
	for i := range g.Nodes {
		if n := &g.Nodes[i]; n.Virtual {
			b.homeOf(n.ID)
		}
	}

	// Entry points: traffic from INTERNET.
	for i := range g.Nodes {
		n := &g.Nodes[i]
		if n.Virtual || hasCaller[n.ID] || n.Requests.Count == 0 {
			continue
		}
		region := b.homeOf(n.ID)
		addTraffic(global, vizInternet, region, n.Requests.Count, n.Requests.Errors)
		if b.level == aggregate.LevelRegion {
			continue
		}
		r := b.regions[region]
		b.addNode(r, vizInternet, "normal")
		r.Connections = append(r.Connections, b.connection(vizInternet, n.ID, n.Requests.Count, n.Requests.Errors))
	}

	doc := &vizGraph{Renderer: "global", Name: "edge", Nodes: []*vizRegion{}, Connections: []*vizConnection{}}
	for pair, t := range global {
		if pair[0] == vizInternet {
			b.region(vizInternet)
		}
		doc.Connections = append(doc.Connections, b.connection(pair[0], pair[1], t.count, t.errors))
	}
	for _, r := range b.regions {
		slices.SortFunc(r.Nodes, func(x, y *vizNode) int { return compareVizNames(x.Name, y.Name) })
		slices.SortFunc(r.Connections, compareVizConnections)
		for _, c := range r.Connections {
			r.MaxVolume = max(r.MaxVolume, c.Metrics.Normal+c.Metrics.Danger)
		}
		for _, n := range r.Nodes {
			r.Class = worseClass(r.Class, n.Class)
		}
		doc.Nodes = append(doc.Nodes, r)
	}
	slices.SortFunc(doc.Nodes, func(x, y *vizRegion) int { return compareVizNames(x.Name, y.Name) })
	slices.SortFunc(doc.Connections, compareVizConnections)
	for _, c := range doc.Connections {
		doc.MaxVolume = max(doc.MaxVolume, c.Metrics.Normal+c.Metrics.Danger)
	}
	return doc
}

// nodeRegion is the region a non-virtual node is drawn in.
func (b *vizBuilder) nodeRegion(n *aggregate.GraphNode) string {
	switch {
	case b.level == aggregate.LevelRegion:
		return n.ID
	case n.Region == "":
		return vizUnknownRegion
	}
	return n.Region
}

// homeOf returns the region of node id, placing it in the unknown region
// (or, at level=region, in a region of its own) when it has none yet.
func (b *vizBuilder) homeOf(id string) string {
	if r, ok := b.home[id]; ok {
		return r
	}
	r := vizUnknownRegion
	if b.level == aggregate.LevelRegion {
		r = id
	}
	b.place(id, r)
	return r
}

// place draws node id in region (once per region). At level=region the
// region is the node itself and gets no inner node.
func (b *vizBuilder) place(id, region string) {
	if _, ok := b.home[id]; !ok {
		b.home[id] = region
	}
	r := b.region(region)
	if b.level == aggregate.LevelRegion {
		r.Class = worseClass(r.Class, b.classOf(id))
		return
	}
	b.addNode(r, id, b.classOf(id))
}

// classOf is the class of graph node id ("normal" for unknown IDs, such as
// an edge endpoint missing from the node list).
func (b *vizBuilder) classOf(id string) string {
	if c, ok := b.class[id]; ok {
		return c
	}
	return "normal"
}

// region returns the region named name, creating it.
func (b *vizBuilder) region(name string) *vizRegion {
	r, ok := b.regions[name]
	if !ok {
		r = &vizRegion{
			Renderer: "region", Name: name, Class: "normal", Updated: b.updated,
			Nodes: []*vizNode{}, Connections: []*vizConnection{}, byName: make(map[string]*vizNode),
		}
		b.regions[name] = r
	}
	return r
}

// addNode adds a focusedChild node to r unless r has one of that name.
func (b *vizBuilder) addNode(r *vizRegion, name, class string) {
	if _, ok := r.byName[name]; ok {
		return
	}
	n := &vizNode{Renderer: "focusedChild", Name: name, Class: class, Nodes: []*vizNode{}}
	r.byName[name] = n
	r.Nodes = append(r.Nodes, n)
}

// connection returns a connection carrying count calls of which errors
// failed, as rates over the graph's seconds.
func (b *vizBuilder) connection(source, target string, count, errors int64) *vizConnection {
	return &vizConnection{
		Source: source,
		Target: target,
		Metrics: vizMetrics{
			Normal: rate(max(count-errors, 0), b.g.Seconds),
			Danger: rate(errors, b.g.Seconds),
		},
		Class: vizClass(fraction(errors, count)),
	}
}

// addTraffic adds count calls (errors failed) to the traffic from src to dst.
func addTraffic(m map[[2]string]*vizTraffic, src, dst string, count, errors int64) {
	k := [2]string{src, dst}
	t, ok := m[k]
	if !ok {
		t = &vizTraffic{}
		m[k] = t
	}
	t.count += count
	t.errors += errors
}

// compareVizNames orders names with INTERNET first, then by name.
func compareVizNames(a, b string) int {
	return cmp.Or(-cmp.Compare(boolInt(a == vizInternet), boolInt(b == vizInternet)), cmp.Compare(a, b))
}

// compareVizConnections orders connections by source, then target, with
// INTERNET first.
func compareVizConnections(a, b *vizConnection) int {
	return cmp.Or(compareVizNames(a.Source, b.Source), compareVizNames(a.Target, b.Target))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
