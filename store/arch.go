package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/flowscope/flowscope/aggregate"
)

// Declared architectures.
//
// An Architecture is what an architect designed: nodes (with the attributes
// they have at each flow-graph level) and the calls between them. It is
// stored as one record per name in bucket "archs" (FORMAT.md,
// "Architectures") and is not subject to retention. The query service
// compares it with the observed flow graph.

// bucketArchs maps an architecture name to its record (FORMAT.md).
var bucketArchs = []byte("archs")

// MaxArchitectureNameLen is the longest architecture name, in bytes.
const MaxArchitectureNameLen = 200

// archFormatVersion is the first byte of an architecture record.
const archFormatVersion = 1

// ErrInvalidArchitecture is wrapped by the errors of PutArchitecture for an
// architecture that fails validation; the message names the problem.
var ErrInvalidArchitecture = errors.New("invalid architecture")

// Architecture is a declared architecture: the nodes and the calls ("Source
// calls Target") an architect designed.
type Architecture struct {
	Name     string
	Source   string // where it came from, e.g. "spigo graph json lamp.json"
	Imported time.Time
	Nodes    []ArchNode // ID unique; the attributes a node has at each level
	Edges    []ArchEdge // node IDs
}

// ArchNode is a declared node: its ID (unique in the architecture) and its
// names at the flow-graph levels (service.name, service.instance.id,
// cloud.availability_zone, cloud.region, service.namespace). Empty means
// the node has no name at that level.
type ArchNode struct {
	ID, Service, Instance, Zone, Region, Namespace string
}

// ArchEdge is a declared call: node Source calls node Target (node IDs).
type ArchEdge struct {
	Source, Target string
}

// ArchitectureInfo describes a stored architecture without its contents.
type ArchitectureInfo struct {
	Name     string
	Source   string
	Imported time.Time
	Nodes    int
	Edges    int
}

// validateArchitecture checks a before it is stored. Every error wraps
// ErrInvalidArchitecture and names the problem.
func validateArchitecture(a *Architecture) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidArchitecture, a.Name, fmt.Sprintf(format, args...))
	}
	switch {
	case a.Name == "":
		return fmt.Errorf("%w: empty name", ErrInvalidArchitecture)
	case len(a.Name) > MaxArchitectureNameLen:
		return fmt.Errorf("%w: name of %d bytes, at most %d allowed", ErrInvalidArchitecture, len(a.Name), MaxArchitectureNameLen)
	case !utf8.ValidString(a.Name):
		return fmt.Errorf("%w %q: name is not valid UTF-8", ErrInvalidArchitecture, a.Name)
	case !utf8.ValidString(a.Source):
		return bad("source is not valid UTF-8")
	}
	if !a.Imported.IsZero() {
		if y := a.Imported.Year(); y < 1678 || y > 2261 {
			return bad("imported time %v out of range (years 1678 to 2261)", a.Imported)
		}
	}
	ids := make(map[string]struct{}, len(a.Nodes))
	for i, n := range a.Nodes {
		if n.ID == "" {
			return bad("node %d has an empty ID", i)
		}
		for _, s := range [...]string{n.ID, n.Service, n.Instance, n.Zone, n.Region, n.Namespace} {
			if !utf8.ValidString(s) {
				return bad("node %d (%q) has an attribute that is not valid UTF-8", i, n.ID)
			}
		}
		if _, dup := ids[n.ID]; dup {
			return bad("node ID %q declared twice", n.ID)
		}
		ids[n.ID] = struct{}{}
	}
	for i, e := range a.Edges {
		for _, end := range [...]struct{ role, id string }{{"source", e.Source}, {"target", e.Target}} {
			if _, ok := ids[end.id]; !ok {
				return bad("edge %d (%q -> %q): %s %q is not a declared node", i, e.Source, e.Target, end.role, end.id)
			}
		}
	}
	return nil
}

// architectures are the declared architectures of imported spigo files,
// one record per name in bucket architectures (FORMAT.md).
type architectures struct{ *file }

// PutArchitecture stores a under a.Name, replacing an architecture of that
// name. A zero a.Imported is set to the store's clock. The name must be
// non-empty and at most MaxArchitectureNameLen bytes, node IDs non-empty and
// unique, edge endpoints declared nodes and every string valid UTF-8;
// otherwise the error wraps ErrInvalidArchitecture. The architecture is
// durable when PutArchitecture returns nil.
func (st *architectures) PutArchitecture(ctx context.Context, a Architecture) error {
	if st.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if a.Imported.IsZero() {
		a.Imported = st.opts.Now()
	}
	if err := validateArchitecture(&a); err != nil {
		return err
	}
	val := encodeArchitecture(&a)
	err := st.bolt.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketArchs)
		if err != nil {
			return err
		}
		return b.Put([]byte(a.Name), val)
	})
	if err != nil {
		return fmt.Errorf("put architecture %q: %w", a.Name, err)
	}
	return nil
}

// Architecture returns the architecture stored under name, or an error
// wrapping ErrNotFound.
func (st *architectures) Architecture(ctx context.Context, name string) (Architecture, error) {
	if st.closed.Load() {
		return Architecture{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return Architecture{}, err
	}
	var a Architecture
	err := st.bolt.View(func(tx *bolt.Tx) error {
		var v []byte
		if b := tx.Bucket(bucketArchs); b != nil && name != "" {
			v = b.Get([]byte(name))
		}
		if v == nil {
			return fmt.Errorf("architecture %q: %w", name, ErrNotFound)
		}
		var err error
		a, err = decodeArchitecture(name, v)
		return err
	})
	if err != nil {
		return Architecture{}, err
	}
	return a, nil
}

// Architectures lists the stored architectures, sorted by name.
func (st *architectures) Architectures(ctx context.Context) ([]ArchitectureInfo, error) {
	if st.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []ArchitectureInfo
	err := st.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketArchs)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			a, err := decodeArchitecture(string(k), v)
			if err != nil {
				return err
			}
			out = append(out, ArchitectureInfo{
				Name: a.Name, Source: a.Source, Imported: a.Imported,
				Nodes: len(a.Nodes), Edges: len(a.Edges),
			})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(x, y ArchitectureInfo) int { return cmp.Compare(x.Name, y.Name) })
	return out, nil
}

// DeleteArchitecture deletes the architecture stored under name, or returns
// an error wrapping ErrNotFound when there is none.
func (st *architectures) DeleteArchitecture(ctx context.Context, name string) error {
	if st.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return st.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketArchs)
		if b == nil || name == "" || b.Get([]byte(name)) == nil {
			return fmt.Errorf("architecture %q: %w", name, ErrNotFound)
		}
		if err := b.Delete([]byte(name)); err != nil {
			return fmt.Errorf("delete architecture %q: %w", name, err)
		}
		return nil
	})
}

// encodeArchitecture encodes a validated a (FORMAT.md, "Architectures"):
//
//	version byte (1)
//	varint  imported, Unix ns
//	string  source
//	uvarint nNodes, then per node 6 strings: id, service, instance, zone, region, namespace
//	uvarint nEdges, then per edge: uvarint source node index, uvarint target node index
//
// where a string is its uvarint length and its bytes. The name is the key.
func encodeArchitecture(a *Architecture) []byte {
	size := 1 + binary.MaxVarintLen64*3 + len(a.Source) + len(a.Edges)*2*binary.MaxVarintLen32
	for _, n := range a.Nodes {
		size += 6*binary.MaxVarintLen32 + len(n.ID) + len(n.Service) + len(n.Instance) + len(n.Zone) + len(n.Region) + len(n.Namespace)
	}
	buf := make([]byte, 0, size)
	putString := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = append(buf, archFormatVersion)
	buf = binary.AppendVarint(buf, a.Imported.UnixNano())
	putString(a.Source)
	index := make(map[string]uint64, len(a.Nodes))
	buf = binary.AppendUvarint(buf, uint64(len(a.Nodes)))
	for i, n := range a.Nodes {
		index[n.ID] = uint64(i)
		for _, s := range [...]string{n.ID, n.Service, n.Instance, n.Zone, n.Region, n.Namespace} {
			putString(s)
		}
	}
	buf = binary.AppendUvarint(buf, uint64(len(a.Edges)))
	for _, e := range a.Edges {
		buf = binary.AppendUvarint(buf, index[e.Source])
		buf = binary.AppendUvarint(buf, index[e.Target])
	}
	return buf
}

// archDecoder reads an architecture record.
type archDecoder struct {
	b   []byte
	err error
}

func (d *archDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("truncated varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *archDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errors.New("truncated varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count of items of at least minSize bytes each.
func (d *archDecoder) count(minSize int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)/minSize) {
		d.err = fmt.Errorf("count %d exceeds the record", n)
		return 0
	}
	return int(n)
}

func (d *archDecoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errors.New("truncated string")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// decodeArchitecture decodes the record v of architecture name.
func decodeArchitecture(name string, v []byte) (Architecture, error) {
	a := Architecture{Name: name}
	if len(v) == 0 || v[0] != archFormatVersion {
		return a, fmt.Errorf("architecture %q: unknown record version", name)
	}
	d := &archDecoder{b: v[1:]}
	ns := d.varint()
	a.Imported = time.Unix(0, ns).UTC()
	a.Source = d.string()
	nNodes := d.count(6)
	if d.err == nil {
		a.Nodes = make([]ArchNode, nNodes)
	}
	for i := 0; i < nNodes && d.err == nil; i++ {
		n := &a.Nodes[i]
		n.ID, n.Service, n.Instance = d.string(), d.string(), d.string()
		n.Zone, n.Region, n.Namespace = d.string(), d.string(), d.string()
	}
	nEdges := d.count(2)
	if d.err == nil {
		a.Edges = make([]ArchEdge, nEdges)
	}
	for i := 0; i < nEdges && d.err == nil; i++ {
		src, dst := d.uvarint(), d.uvarint()
		if d.err == nil && (src >= uint64(nNodes) || dst >= uint64(nNodes)) {
			d.err = fmt.Errorf("edge %d: node index out of range", i)
		}
		if d.err == nil {
			a.Edges[i] = ArchEdge{Source: a.Nodes[src].ID, Target: a.Nodes[dst].ID}
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return Architecture{Name: name}, fmt.Errorf("decode architecture %q: %w", name, d.err)
	}
	return a, nil
}

// NameAt returns the name of declared node n at level l, "" when it has
// none: the name the observed flow graph gives such a node
// (aggregate.Node.ID), "namespace/name" at the service and instance levels
// for a node with a namespace.
func (n ArchNode) NameAt(l aggregate.Level) string {
	var name string
	switch l {
	case aggregate.LevelInstance:
		name = n.Instance
	case aggregate.LevelZone:
		return n.Zone
	case aggregate.LevelRegion:
		return n.Region
	case aggregate.LevelNamespace:
		return n.Namespace
	default:
		name = n.Service
	}
	if name != "" && n.Namespace != "" {
		return n.Namespace + "/" + name
	}
	return name
}

// Namespace returns the namespace the architecture is the design of: the
// namespace of all its nodes, "" when a node has none or they differ.
func (a *Architecture) Namespace() string {
	ns := ""
	for i, n := range a.Nodes {
		if n.Namespace == "" || (i > 0 && n.Namespace != ns) {
			return ""
		}
		ns = n.Namespace
	}
	return ns
}
