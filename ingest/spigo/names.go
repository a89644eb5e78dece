// Package spigo reads the files written by the microservice simulator spigo
// (simianviz): its hierarchical actor names, graph JSON (declared
// architectures), architecture definitions, Guesstimate latency samples and
// the old metrics JSON.
// Its flow files are Zipkin v1 JSON, read by package zipkin, which maps
// their endpoint names to resources with ResourceAttrs.
//
// The formats are described in ../shared/testdata/spigo/README.md of the
// project workspace and in docs/import.md.
package spigo

import "strings"

// Resource attribute keys a spigo name maps to (DESIGN.md, "Data model").
const (
	AttrNamespace = "service.namespace"       // arch
	AttrRegion    = "cloud.region"            // region
	AttrZone      = "cloud.availability_zone" // zone
	AttrHost      = "host.name"               // machine
	AttrInstance  = "service.instance.id"     // instance
	AttrContainer = "container.name"          // container
	AttrProcess   = "process.executable.name" // process
	AttrService   = "service.name"            // service
	AttrPackage   = "spigo.package"           // package
)

// Attr is one resource attribute derived from a name.
type Attr struct {
	Key, Value string
}

// Name is a parsed spigo actor name.
type Name struct {
	Arch, Region, Zone, Machine, Instance, Container, Process, Service, Package string
}

// ParseName parses a spigo hierarchical actor name. It accepts the three
// layouts spigo has used:
//
//   - since April 2016, 9 parts:
//     arch.region.zone.machine.instance.container.process.service.package
//   - late 2015 to February 2016, 9 parts with the instance in part 3 and
//     part 4 empty: storage.us-east-1.zoneA.mysql0....mysql.karyon
//   - early 2015, 6 parts: arch.region.zone.service.package.instanceN
//
// Empty parts stay empty. ok is false when name has another shape or no
// service part; callers then use the whole name as the service name.
func ParseName(name string) (n Name, ok bool) {
	var p [9]string
	k := 0
	for rest := name; ; k++ {
		if k == len(p) {
			return Name{}, false // more than 9 parts
		}
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			p[k] = rest
			k++
			break
		}
		p[k], rest = rest[:i], rest[i+1:]
	}
	switch k {
	case 9:
		n = Name{Arch: p[0], Region: p[1], Zone: p[2], Machine: p[3], Instance: p[4],
			Container: p[5], Process: p[6], Service: p[7], Package: p[8]}
		if n.Instance == "" && n.Machine != "" {
			// Feb 2016 layout: the instance sat in part 3.
			n.Instance, n.Machine = n.Machine, ""
		}
	case 6:
		n = Name{Arch: p[0], Region: p[1], Zone: p[2], Service: p[3], Package: p[4], Instance: p[5]}
	default:
		return Name{}, false
	}
	if n.Service == "" {
		return Name{}, false
	}
	return n, true
}

// Attrs returns the resource attributes of n, omitting empty parts, in the
// order of the name's parts.
func (n Name) Attrs() []Attr {
	all := [...]Attr{
		{AttrNamespace, n.Arch}, {AttrRegion, n.Region}, {AttrZone, n.Zone},
		{AttrHost, n.Machine}, {AttrInstance, n.Instance}, {AttrContainer, n.Container},
		{AttrProcess, n.Process}, {AttrService, n.Service}, {AttrPackage, n.Package},
	}
	out := make([]Attr, 0, len(all))
	for _, a := range all {
		if a.Value != "" {
			out = append(out, a)
		}
	}
	return out
}

// ResourceAttrs returns the resource attributes for an actor (or Zipkin
// endpoint service) name: the parts of a spigo name, or just service.name
// for any other non-empty name. An empty name gives nil.
func ResourceAttrs(name string) []Attr {
	if n, ok := ParseName(name); ok {
		return n.Attrs()
	}
	if name == "" {
		return nil
	}
	return []Attr{{AttrService, name}}
}
