package aggregate

// Interning: the pairing state and the open windows refer to nodes and
// strings (span names, virtual target names) by uint32 indices, which keeps
// pending entries free of pointers (the garbage collector does not scan
// them) and series keys small to hash. Index 0 of both tables is reserved:
// the empty string and the zero Node.
//
// The tables only grow between flushes; Flush compacts them (compactTables)
// once they hold many entries no longer referenced, so a stream of
// distinct names cannot grow them without bound.

// minTableLimit is the table size below which no compaction is attempted.
const minTableLimit = 1 << 16

type interner struct {
	strs      []string
	strIdx    map[string]uint32
	nodes     []Node
	nodeIdx   map[string]uint32 // key: nodeKey encoding
	keyBuf    []byte
	strLimit  int
	nodeLimit int
	// recent caches the last strings interned, by a cheap hash: span
	// names repeat from span to span, and a hit saves a map lookup.
	recent [16]recentStr
}

type recentStr struct {
	s string
	i uint32
}

func newInterner() interner {
	in := interner{strLimit: minTableLimit, nodeLimit: minTableLimit}
	in.reset()
	return in
}

func (in *interner) reset() {
	in.strs = append(in.strs[:0], "")
	in.strIdx = map[string]uint32{"": 0}
	in.nodes = append(in.nodes[:0], Node{})
	in.nodeIdx = map[string]uint32{"": 0}
	in.recent = [16]recentStr{}
}

// str interns b (copying it on first sight).
func (in *interner) str(b []byte) uint32 {
	var slot int
	if n := len(b); n > 0 {
		slot = (n + int(b[0]) + 7*int(b[n-1]) + 3*int(b[n/2])) & 15
	}
	r := &in.recent[slot]
	if r.s == string(b) {
		return r.i
	}
	i, ok := in.strIdx[string(b)]
	if !ok {
		i = uint32(len(in.strs))
		s := string(b)
		in.strs = append(in.strs, s)
		in.strIdx[s] = i
	}
	*r = recentStr{s: in.strs[i], i: i}
	return i
}

// strString interns s.
func (in *interner) strString(s string) uint32 {
	if i, ok := in.strIdx[s]; ok {
		return i
	}
	i := uint32(len(in.strs))
	in.strs = append(in.strs, s)
	in.strIdx[s] = i
	return i
}

// node interns the node with the given attribute values; svc must not be
// empty (callers substitute unknown_service).
func (in *interner) node(svc, inst, zone, region, ns []byte) uint32 {
	k := in.keyBuf[:0]
	k = append(k, 0) // not virtual
	for _, v := range [...][]byte{svc, inst, zone, region, ns} {
		k = appendKeyPart(k, v)
	}
	in.keyBuf = k
	if i, ok := in.nodeIdx[string(k)]; ok {
		return i
	}
	n := Node{Service: string(svc), Instance: string(inst), Zone: string(zone), Region: string(region), Namespace: string(ns)}
	return in.addNode(string(k), n)
}

// virtualNode interns the virtual node named name (a string index).
func (in *interner) virtualNode(name uint32) uint32 {
	s := in.strs[name]
	k := append(in.keyBuf[:0], 1)
	k = append(k, s...)
	in.keyBuf = k
	if i, ok := in.nodeIdx[string(k)]; ok {
		return i
	}
	return in.addNode(string(k), Node{Service: s, Virtual: true})
}

func (in *interner) addNode(key string, n Node) uint32 {
	i := uint32(len(in.nodes))
	in.nodes = append(in.nodes, n)
	in.nodeIdx[key] = i
	return i
}

// nodeKey is the interning key of n.
func nodeKey(buf []byte, n Node) []byte {
	if n.Virtual {
		return append(append(buf, 1), n.Service...)
	}
	buf = append(buf, 0)
	for _, v := range [...]string{n.Service, n.Instance, n.Zone, n.Region, n.Namespace} {
		buf = appendKeyPart(buf, []byte(v))
	}
	return buf
}

// appendKeyPart appends a length-prefixed part (so no separator can be
// forged by attribute values).
func appendKeyPart(k, v []byte) []byte {
	n := len(v)
	for n >= 0x80 {
		k = append(k, byte(n)|0x80)
		n >>= 7
	}
	k = append(k, byte(n))
	return append(k, v...)
}

// needsCompaction reports whether the tables have outgrown their limits.
func (in *interner) needsCompaction() bool {
	return len(in.strs) > in.strLimit || len(in.nodes) > in.nodeLimit
}

// remapper rebuilds the tables with only the indices passed to it.
type remapper struct {
	old     interner
	strMap  map[uint32]uint32
	nodeMap map[uint32]uint32
	in      *interner
}

func (in *interner) beginCompaction() *remapper {
	old := *in
	in.strs, in.nodes = nil, nil
	in.reset()
	return &remapper{old: old, strMap: map[uint32]uint32{0: 0}, nodeMap: map[uint32]uint32{0: 0}, in: in}
}

func (m *remapper) str(i uint32) uint32 {
	if j, ok := m.strMap[i]; ok {
		return j
	}
	j := m.in.strString(m.old.strs[i])
	m.strMap[i] = j
	return j
}

func (m *remapper) node(i uint32) uint32 {
	if j, ok := m.nodeMap[i]; ok {
		return j
	}
	n := m.old.nodes[i]
	k := nodeKey(nil, n)
	j, ok := m.in.nodeIdx[string(k)]
	if !ok {
		j = m.in.addNode(string(k), n)
	}
	m.nodeMap[i] = j
	return j
}

func (m *remapper) end() {
	m.in.strLimit = max(minTableLimit, 2*len(m.in.strs))
	m.in.nodeLimit = max(minTableLimit, 2*len(m.in.nodes))
}
