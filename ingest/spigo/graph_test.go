package spigo

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/flowscope/flowscope/ingest"
)

// sampleDir holds the spigo sample files shared by the project.
const sampleDir = "../../testdata/spigo"

func openFile(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readGraphFile(t *testing.T, path string) *Graph {
	t.Helper()
	g, err := ReadGraph(openFile(t, path))
	if err != nil {
		t.Fatalf("ReadGraph(%s): %v", path, err)
	}
	return g
}

func TestParseGraphNode(t *testing.T) {
	tests := []struct {
		name    string
		want    GraphNode
		wantErr string
	}{
		{"lamp.us-east-1.zoneA.webserver00", GraphNode{Arch: "lamp", Region: "us-east-1", Zone: "zoneA", Instance: "webserver00", Service: "webserver"}, ""},
		{"lamp.*.*.www00", GraphNode{Arch: "lamp", Region: "*", Zone: "*", Instance: "www00", Service: "www"}, ""},
		{"lamp.us-east-1.*.webserver-elb00", GraphNode{Arch: "lamp", Region: "us-east-1", Zone: "*", Instance: "webserver-elb00", Service: "webserver-elb"}, ""},
		{"lamp.us-east-1.zoneB.rds-mysql01", GraphNode{Arch: "lamp", Region: "us-east-1", Zone: "zoneB", Instance: "rds-mysql01", Service: "rds-mysql"}, ""},
		// On its own a 3-digit index reads as a service ending in a digit
		// and a 2-digit index; ReadGraph decides with the other nodes
		// (TestReadGraphInstanceServices).
		{"netflix.us-west-2.zoneC.homepage123", GraphNode{Arch: "netflix", Region: "us-west-2", Zone: "zoneC", Instance: "homepage123", Service: "homepage1"}, ""},
		// Service names ending in digits keep them (issue 11, item 5).
		{"netflix.us-east-1.zoneA.contentMetadataS300", GraphNode{Arch: "netflix", Region: "us-east-1", Zone: "zoneA", Instance: "contentMetadataS300", Service: "contentMetadataS3"}, ""},
		{"netflix.us-east-1.zoneB.content-s301", GraphNode{Arch: "netflix", Region: "us-east-1", Zone: "zoneB", Instance: "content-s301", Service: "content-s3"}, ""},
		{"a.r.z.ec2x0", GraphNode{Arch: "a", Region: "r", Zone: "z", Instance: "ec2x0", Service: "ec2x"}, ""},
		{"fsm.atlantic.bermuda.blackbeard7", GraphNode{Arch: "fsm", Region: "atlantic", Zone: "bermuda", Instance: "blackbeard7", Service: "blackbeard"}, ""},
		{"a.r.z.42", GraphNode{Arch: "a", Region: "r", Zone: "z", Instance: "42", Service: "42"}, ""},
		{"a.r.z.v2api", GraphNode{Arch: "a", Region: "r", Zone: "z", Instance: "v2api", Service: "v2api"}, ""},
		{"lamp.us-east-1.zoneA.webserver.monolith", GraphNode{Arch: "lamp", Region: "us-east-1", Zone: "zoneA", Service: "webserver", Package: "monolith"}, ""},
		{"lamp.us-east-1.zoneA", GraphNode{}, "has 3 parts"},
		{"lamp.us-east-1.zoneA..webserver10...webserver.monolith", GraphNode{}, "part 4 is empty"},
		{"lamp.us-east-1.zoneA.", GraphNode{}, "part 4 is empty"},
		{"", GraphNode{}, "part 1 is empty"},
		{"a.b.c.d.e.f", GraphNode{}, "has 6 parts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGraphNode(tt.name)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Name = tt.name
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestReadGraphInstanceServices checks that reading a graph strips only the
// index spigo appends to a service name (fmt %02d, or %d before April
// 2016), deciding ambiguous labels with their siblings: every service's
// instances are numbered from 0 (issue 11, item 5).
func TestReadGraphInstanceServices(t *testing.T) {
	var elems []string
	node := func(label, pkg string) {
		elems = append(elems, fmt.Sprintf(`{"node":"netflix.us-east-1.zoneA.%s","package":%q}`, label, pkg))
	}
	want := map[string]string{} // instance → service
	add := func(service, pkg string, from, to int, format string) {
		for i := from; i <= to; i++ {
			label := service + fmt.Sprintf(format, i)
			node(label, pkg)
			want[label] = service
		}
	}
	add("contentMetadataS3", "staash", 0, 11, "%02d")
	add("content-s3", "store", 0, 2, "%02d")
	add("homepage", "karyon", 0, 123, "%02d") // homepage100…homepage123
	add("ec2", "karyon", 0, 3, "%02d")        // ec200…ec203
	add("mysql", "karyon", 0, 10, "%d")       // 2015 labels: mysql0…mysql10
	add("v2api", "zuul", 0, 0, "%02d")        // v2api00
	add("cassandra", "priamCassandra", 0, 0, "%02d")
	add("cassandra1", "store", 0, 1, "%02d") // cassandra100, cassandra101: not cassandra's
	node("lonely305", "x")                   // no sibling: the two-digit reading
	want["lonely305"] = "lonely3"
	file := `{"arch":"netflix","version":"spigo-0.4","graph":[` + strings.Join(elems, ",") + `]}`
	g, err := ReadGraph(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != len(want) {
		t.Fatalf("%d nodes, want %d", len(g.Nodes), len(want))
	}
	for _, n := range g.Nodes {
		if n.Service != want[n.Instance] {
			t.Errorf("instance %s: service %q, want %q", n.Instance, n.Service, want[n.Instance])
		}
	}
}

// TestReadGraphLamp checks the README §7 reference answers for json/lamp.json.
func TestReadGraphLamp(t *testing.T) {
	g := readGraphFile(t, filepath.Join(sampleDir, "json", "lamp.json"))
	if g.Arch != "lamp" || g.Version != "spigo-0.4" || g.Args != "[./spigo -d 10 -a lamp -j]" || g.Date != "2016-06-23T13:14:02.530693572-07:00" {
		t.Errorf("header = %q %q %q %q", g.Arch, g.Version, g.Args, g.Date)
	}
	if len(g.Nodes) != 23 || len(g.Edges) != 73 || g.Done != 18 || g.Forgotten != 0 || g.Unknown != 0 {
		t.Errorf("nodes %d edges %d done %d forgotten %d unknown %d, want 23 73 18 0 0",
			len(g.Nodes), len(g.Edges), g.Done, g.Forgotten, g.Unknown)
	}
	wantServices := []string{"memcache", "rds-mysql", "webserver", "webserver-elb", "www"}
	if got := g.NodeIDs(LevelService); !reflect.DeepEqual(got, wantServices) {
		t.Errorf("services = %v, want %v", got, wantServices)
	}
	wantEdges := []DeclaredEdge{{"webserver", "memcache"}, {"webserver", "rds-mysql"}, {"webserver-elb", "webserver"}, {"www", "webserver-elb"}}
	if got := g.Declared(LevelService); !reflect.DeepEqual(got, wantEdges) {
		t.Errorf("service edges = %v, want %v", got, wantEdges)
	}
	// Instance edges behind each service edge (README §7).
	service := make(map[string]string)
	for _, n := range g.Nodes {
		service[n.Instance] = n.Service
	}
	behind := make(map[DeclaredEdge]int)
	inst := g.Declared(LevelInstance)
	for _, e := range inst {
		behind[DeclaredEdge{service[e.Source], service[e.Target]}]++
	}
	wantBehind := map[DeclaredEdge]int{
		{"www", "webserver-elb"}: 1, {"webserver-elb", "webserver"}: 18,
		{"webserver", "rds-mysql"}: 36, {"webserver", "memcache"}: 18,
	}
	if !reflect.DeepEqual(behind, wantBehind) || len(inst) != 73 {
		t.Errorf("instance edges (%d) per service edge = %v, want %v", len(inst), behind, wantBehind)
	}
	if got := g.NodeIDs(LevelInstance); len(got) != 23 {
		t.Errorf("%d instances, want 23", len(got))
	}
	if got, want := g.NodeIDs(LevelRegion), []string{"*", "us-east-1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("regions = %v, want %v", got, want)
	}
	if got, want := g.Declared(LevelNamespace), []DeclaredEdge{{"lamp", "lamp"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("namespace edges = %v, want %v", got, want)
	}
	zones := g.Declared(LevelZone)
	for _, want := range []DeclaredEdge{{"*", "*"}, {"zoneA", "zoneA"}} {
		if !containsEdge(zones, want) {
			t.Errorf("zone edges %v lack %v", zones, want)
		}
	}
	// The first node, with its timestamp parsed to the nanosecond.
	n := g.Nodes[0]
	wantTime := time.Date(2016, 6, 23, 13, 14, 2, 531213799, time.FixedZone("", -7*3600))
	if n.Name != "lamp.us-east-1.zoneA.rds-mysql00" || n.Package != "store" || n.Metadata != "IP/54.198.0.1" || !n.Timestamp.Equal(wantTime) {
		t.Errorf("first node = %+v", n)
	}
	// Eight fractional digits.
	last := g.Edges[len(g.Edges)-1]
	if last.Timestamp.IsZero() {
		t.Errorf("last edge %+v has no time", last)
	}
	if g.Declared("bogus") != nil || g.NodeIDs("bogus") != nil {
		t.Error("unknown level should give nil")
	}
	if got := g.Declared(""); !reflect.DeepEqual(got, wantEdges) {
		t.Errorf(`Declared("") = %v, want the service edges`, got)
	}
}

// TestGraphTimestamps checks that RFC 3339 timestamps with 0 to 9
// fractional digits (spigo drops trailing zeros) parse exactly, and that
// malformed ones are rejected with their element.
func TestGraphTimestamps(t *testing.T) {
	frac := "123456789"
	for digits := 0; digits <= 9; digits++ {
		ts := "2016-06-23T13:14:02-07:00"
		if digits > 0 {
			ts = "2016-06-23T13:14:02." + frac[:digits] + "-07:00"
		}
		g, err := ReadGraph(strings.NewReader(`{"graph":[{"node":"a.r.z.x00","timestamp":"` + ts + `"}]}`))
		if err != nil {
			t.Fatalf("%s: %v", ts, err)
		}
		var ns int
		for i := 0; i < 9; i++ {
			ns *= 10
			if i < digits {
				ns += int(frac[i] - '0')
			}
		}
		want := time.Date(2016, 6, 23, 13, 14, 2, ns, time.FixedZone("", -7*3600))
		if got := g.Nodes[0].Timestamp; !got.Equal(want) {
			t.Errorf("%s parsed as %v, want %v", ts, got, want)
		}
	}
	for _, ts := range []string{"", "2016-06-23T13:14:02.-07:00", "2016-06-23T13:14:02", "2016-06-23 13:14:02Z", "2016-06-23T25:14:02Z", "1466712842"} {
		_, err := ReadGraph(strings.NewReader(`{"graph":[{"node":"a.r.z.x00","timestamp":"` + ts + `"}]}`))
		if err == nil || !strings.Contains(err.Error(), "graph element 0: timestamp") {
			t.Errorf("timestamp %q: err = %v", ts, err)
		}
	}
}

func containsEdge(es []DeclaredEdge, e DeclaredEdge) bool {
	for _, x := range es {
		if x == e {
			return true
		}
	}
	return false
}

// TestReadGraphStreams reads lamp.json one byte per Read call, so that
// the decoder never holds much of it.
func TestReadGraphStreams(t *testing.T) {
	g, err := ReadGraph(iotest.OneByteReader(openFile(t, filepath.Join(sampleDir, "json", "lamp.json"))))
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != 23 || len(g.Edges) != 73 {
		t.Errorf("nodes %d edges %d", len(g.Nodes), len(g.Edges))
	}
}

func TestReadGraphVariants(t *testing.T) {
	tests := []struct {
		file                       string
		arch, version              string
		nodes, done, forgot, unkwn int
		edgeIDs                    []string
		declared                   map[string][]DeclaredEdge
		check                      func(t *testing.T, g *Graph)
	}{
		{
			file: "graph_v03_forget.json", arch: "web", version: "spigo-0.3",
			nodes: 4, done: 1, forgot: 3, unkwn: 2,
			edgeIDs: []string{"e1", "e3", "e4"},
			declared: map[string][]DeclaredEdge{
				LevelService:   {{"fe", "db"}, {"load", "fe"}},
				LevelInstance:  {{"fe00", "db00"}, {"fe01", "db00"}, {"load00", "fe00"}},
				LevelZone:      {{"*", "zoneA"}, {"zoneA", "zoneA"}, {"zoneB", "zoneA"}},
				LevelRegion:    {{"*", "us-east-1"}, {"us-east-1", "us-east-1"}},
				LevelNamespace: {{"web", "web"}},
			},
			check: func(t *testing.T, g *Graph) {
				// spigo-0.3 "service" is the package; the redeclared node
				// keeps its position and takes the later fields.
				if n := g.Nodes[0]; n.Name != "web.us-east-1.zoneA.fe00" || n.Package != "zuul" || n.Metadata != "IP/54.198.0.9" || !n.Timestamp.IsZero() {
					t.Errorf("redeclared node = %+v", n)
				}
				if n := g.Nodes[2]; n.Package != "store" || n.Timestamp.Nanosecond() != 123456789 {
					t.Errorf("node 2 = %+v", n)
				}
				if g.Args != "[./spigo -a web -j]" {
					t.Errorf("args = %q", g.Args)
				}
			},
		},
		{
			file: "graph_collapsed.json", arch: "lamp", version: "spigo-0.4", nodes: 4,
			edgeIDs: []string{"e1", "e2", "e3", "e4"},
			declared: map[string][]DeclaredEdge{
				LevelService:  {{"webserver", "rds-mysql"}, {"www", "webserver"}},
				LevelInstance: {{"webserver", "rds-mysql"}, {"www", "webserver"}},
				LevelZone:     {{"*", "zoneA"}, {"*", "zoneB"}, {"zoneA", "zoneA"}, {"zoneB", "zoneA"}},
			},
			check: func(t *testing.T, g *Graph) {
				if n := g.Nodes[0]; n.Instance != "" || n.Service != "webserver" || n.Package != "monolith" {
					t.Errorf("collapsed node = %+v", n)
				}
			},
		},
		{
			file: "graph_forward.json", arch: "fsm", version: "spigo-0.4", nodes: 3,
			edgeIDs:  []string{"e1"},
			declared: map[string][]DeclaredEdge{LevelService: {{"blackbeard", "blackbeard"}}},
			check: func(t *testing.T, g *Graph) {
				if got, want := g.NodeIDs(LevelService), []string{"007", "blackbeard"}; !reflect.DeepEqual(got, want) {
					t.Errorf("services = %v, want %v", got, want)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			g := readGraphFile(t, filepath.Join("testdata", tt.file))
			if g.Arch != tt.arch || g.Version != tt.version {
				t.Errorf("arch %q version %q", g.Arch, g.Version)
			}
			if len(g.Nodes) != tt.nodes || g.Done != tt.done || g.Forgotten != tt.forgot || g.Unknown != tt.unkwn {
				t.Errorf("nodes %d done %d forgotten %d unknown %d, want %d %d %d %d",
					len(g.Nodes), g.Done, g.Forgotten, g.Unknown, tt.nodes, tt.done, tt.forgot, tt.unkwn)
			}
			var ids []string
			for _, e := range g.Edges {
				ids = append(ids, e.ID)
			}
			if !reflect.DeepEqual(ids, tt.edgeIDs) {
				t.Errorf("edges %v, want %v", ids, tt.edgeIDs)
			}
			for level, want := range tt.declared {
				if got := g.Declared(level); !reflect.DeepEqual(got, want) {
					t.Errorf("Declared(%s) = %v, want %v", level, got, want)
				}
			}
			if tt.check != nil {
				tt.check(t, g)
			}
		})
	}
}

func TestReadGraphErrors(t *testing.T) {
	const n1 = `{"node":"a.r.z.x00","package":"p"}`
	const n2 = `{"node":"a.r.z.y00","package":"p"}`
	tests := []struct {
		name, in string
		want     []string // substrings of the error
	}{
		{"empty", ``, []string{"graph file", "at byte 0", "unexpected EOF"}},
		{"not an object", `[]`, []string{"got an array, want an object", "byte 0"}},
		{"truncated", `{"arch":"a","graph":[` + n1 + `,{"node":"a.r`, []string{"graph element 1", "byte 56", "unexpected EOF"}},
		{"truncated after graph", `{"graph":[]`, []string{"end of graph file", "unexpected EOF"}},
		{"undeclared target", `{"graph":[` + n1 + `,{"edge":"e7","source":"a.r.z.x00","target":"a.r.z.nobody00"}]}`,
			[]string{`graph element 1`, `edge "e7"`, `target "a.r.z.nobody00" is not a declared node`, "byte 45"}},
		{"undeclared source", `{"graph":[` + n1 + `,{"edge":"e1","source":"a.r.z.nobody00","target":"a.r.z.x00"}]}`,
			[]string{`edge "e1": source "a.r.z.nobody00"`}},
		{"bad timestamp", `{"graph":[` + n1 + `,` + n2 + `,{"edge":"e1","source":"a.r.z.x00","target":"a.r.z.y00","timestamp":"2016-06-23 13:14:02"}]}`,
			[]string{"graph element 2", "timestamp", "byte 80"}},
		{"bad date", `{"date":"yesterday"}`, []string{`"date"`, "byte 8"}},
		{"bad node name", `{"graph":[{"node":"a.b"}]}`, []string{"graph element 0", `node name "a.b" has 2 parts`, "byte 10"}},
		{"two kinds", `{"graph":[{"node":"a.r.z.x00","edge":"e1"}]}`, []string{"more than one of node, edge"}},
		{"duplicate edge id", `{"graph":[` + n1 + `,` + n2 + `,{"edge":"e1","source":"a.r.z.x00","target":"a.r.z.y00"},{"edge":"e1","source":"a.r.z.y00","target":"a.r.z.x00"}]}`,
			[]string{"graph element 3", `edge "e1": id already used by graph element 2`}},
		{"empty edge id", `{"graph":[{"edge":"","source":"a","target":"b"}]}`, []string{"empty id"}},
		{"edge without target", `{"graph":[{"edge":"e1","source":"a"}]}`, []string{"source or target is missing"}},
		{"element not an object", `{"graph":[` + n1 + `,42]}`, []string{"graph element 1", "byte 45"}},
		{"wrong field type", `{"graph":[{"node":"a.r.z.x00","package":7}]}`, []string{"graph element 0"}},
		{"graph not an array", `{"graph":{}}`, []string{`"graph": got an object, want an array`}},
		{"arch not a string", `{"arch":["lamp"]}`, []string{`"arch": got an array, want a string`}},
		{"missing comma", `{"arch":"a" "graph":[]}`, []string{"invalid character"}},
		{"trailing data", `{"graph":[]} {}`, []string{"after the document", "byte 13"}},
		{"syntax error in element", `{"graph":[{"node":"a.r.z.x00",}]}`, []string{"graph element 0", "invalid character"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := ReadGraph(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("no error, graph %+v", g)
			}
			if !errors.Is(err, ingest.ErrInvalid) {
				t.Errorf("error %v does not wrap ingest.ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestReadGraphReadError checks that an I/O error is not reported as an
// invalid payload.
func TestReadGraphReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader(`{"graph":[`), iotest.ErrReader(boom))
	_, err := ReadGraph(r)
	if !errors.Is(err, boom) || errors.Is(err, ingest.ErrInvalid) {
		t.Errorf("err = %v, want boom and not ErrInvalid", err)
	}
}
