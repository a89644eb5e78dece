package spigo

import (
	"fmt"
	"io"
	"slices"
)

// EurekaDependency is the dependency name with which an architecture
// service asks to be connected across regions; it names no service.
const EurekaDependency = "eureka"

// Arch is a spigo architecture definition (json_arch/<arch>_arch.json,
// versions arch-0.0 and arch-0.1), the input from which spigo builds an
// architecture.
type Arch struct {
	Name        string // "arch"
	Description string // "description"
	Version     string // "version": arch-0.0 or arch-0.1 (not checked)
	Victim      string // "victim": the service chaosmonkey kills an instance of, or ""
	Args        string // "args" (optional, written by spigo's architecture tools)
	Date        string // "date" (optional)
	// Services in start order; spigo tells only the last one to generate
	// traffic.
	Services []ArchService
}

// ArchService is one service of an architecture definition.
type ArchService struct {
	Name    string // service name (part 7 of actor names)
	Package string // Go package implementing the actors, e.g. monolith
	// Count is the number of instances per region, spread over three
	// zones; 0 means one cross-zone instance per region.
	Count int
	// Regions is the number of regions (multiplied by spigo -w); 0 means
	// one cross-region instance.
	Regions int
	// Dependencies are the services this one calls; EurekaDependency means
	// "connect across regions". A JSON null reads as none.
	Dependencies []string
	// Machine, Instance, Container and Process are optional fields that
	// some files have and the simulator ignores.
	Machine, Instance, Container, Process string
}

// archService is the JSON form of ArchService.
type archService struct {
	Name         string   `json:"name"`
	Package      string   `json:"package"`
	Count        int      `json:"count"`
	Regions      int      `json:"regions"`
	Dependencies []string `json:"dependencies"`
	Machine      string   `json:"machine"`
	Instance     string   `json:"instance"`
	Container    string   `json:"container"`
	Process      string   `json:"process"`
}

// ReadArch reads a spigo architecture definition. Keys may come in any
// order and unknown keys are ignored. Like spigo, it requires service
// names to be non-empty and distinct and every dependency to name a
// service of the file or be EurekaDependency; counts must not be
// negative. Errors name the service (its index in "services") and the byte
// offset, and wrap ingest.ErrInvalid unless reading r failed.
func ReadArch(r io.Reader) (*Arch, error) {
	j := newJSONReader(r, "spigo architecture")
	a := &Arch{}
	if _, err := j.open('{', "architecture file", false); err != nil {
		return nil, err
	}
	var offs []int64 // byte offset of each service
	for j.dec.More() {
		key, off, err := j.key("architecture key")
		if err != nil {
			return nil, err
		}
		switch key {
		case "arch":
			a.Name, err = j.str(`"arch"`)
		case "description":
			a.Description, err = j.str(`"description"`)
		case "version":
			a.Version, err = j.str(`"version"`)
		case "victim":
			a.Victim, err = j.str(`"victim"`)
		case "args":
			a.Args, err = j.str(`"args"`)
		case "date":
			a.Date, err = j.str(`"date"`)
		case "services":
			var ok bool
			if ok, err = j.open('[', `"services"`, true); err != nil || !ok {
				break
			}
			for err == nil && j.dec.More() {
				i := len(a.Services)
				offs = append(offs, j.nextOffset())
				var s archService
				if err = j.decode(&s, fmt.Sprintf("service %d", i)); err == nil {
					a.Services = append(a.Services, ArchService(s))
				}
			}
			if err == nil {
				err = j.close(`end of "services"`)
			}
		default:
			err = j.skip(fmt.Sprintf("value of key %q (byte %d)", clip(key), off))
		}
		if err != nil {
			return nil, err
		}
	}
	if err := j.close("end of architecture file"); err != nil {
		return nil, err
	}
	if err := j.end(); err != nil {
		return nil, err
	}
	if err := a.check(j, offs); err != nil {
		return nil, err
	}
	return a, nil
}

// check validates names, counts and dependencies.
func (a *Arch) check(j *jsonReader, offs []int64) error {
	names := make(map[string]int, len(a.Services))
	for i, s := range a.Services {
		switch {
		case s.Name == "":
			return j.failf(offs[i], "service %d: empty name", i)
		case s.Count < 0 || s.Regions < 0:
			return j.failf(offs[i], "service %d (%q): negative count or regions", i, clip(s.Name))
		}
		if k, dup := names[s.Name]; dup {
			return j.failf(offs[i], "service %d: name %q already used by service %d", i, clip(s.Name), k)
		}
		names[s.Name] = i
	}
	for i, s := range a.Services {
		for _, d := range s.Dependencies {
			if _, ok := names[d]; !ok && d != EurekaDependency {
				return j.failf(offs[i], "service %d (%q): dependency %q is not a service of the architecture", i, clip(s.Name), clip(d))
			}
		}
	}
	return nil
}

// Declared returns the declared service-level dependencies, deduplicated
// and sorted by source, then target. EurekaDependency is skipped.
func (a *Arch) Declared() []DeclaredEdge {
	out := []DeclaredEdge{}
	for _, s := range a.Services {
		for _, d := range s.Dependencies {
			if d != EurekaDependency {
				out = append(out, DeclaredEdge{s.Name, d})
			}
		}
	}
	slices.SortFunc(out, compareDeclared)
	return slices.Compact(out)
}
