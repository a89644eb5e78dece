package spigo

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/flowscope/flowscope/ingest"
)

func TestReadArch(t *testing.T) {
	tests := []struct {
		path     string
		want     Arch // without Services
		services []string
		last     ArchService
		declared []DeclaredEdge
	}{
		{
			path:     filepath.Join(sampleDir, "json_arch", "lamp_arch.json"),
			want:     Arch{Name: "lamp", Description: "Simple LAMP stack", Version: "arch-0.0"},
			services: []string{"rds-mysql", "memcache", "webserver", "webserver-elb", "www"},
			last:     ArchService{Name: "www", Package: "denominator", Count: 0, Regions: 0, Dependencies: []string{"webserver-elb"}},
			declared: []DeclaredEdge{{"webserver", "memcache"}, {"webserver", "rds-mysql"}, {"webserver-elb", "webserver"}, {"www", "webserver-elb"}},
		},
		{
			path:     filepath.Join("testdata", "arch_storage.json"),
			want:     Arch{Name: "storage", Description: "cross-region storage, tab indented", Version: "arch-0.1", Victim: "web", Args: "[./spigo -a storage]"},
			services: []string{"disk", "mysql", "web", "load"},
			last:     ArchService{Name: "load", Package: "denominator", Dependencies: []string{"web"}},
			// eureka skipped, duplicate mysql→disk merged, self-edge kept.
			declared: []DeclaredEdge{{"load", "web"}, {"mysql", "disk"}, {"web", "mysql"}, {"web", "web"}},
		},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			a, err := ReadArch(openFile(t, tt.path))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range a.Services {
				names = append(names, s.Name)
			}
			if !reflect.DeepEqual(names, tt.services) {
				t.Errorf("services %v, want %v", names, tt.services)
			}
			last := a.Services[len(a.Services)-1]
			if !reflect.DeepEqual(last, tt.last) {
				t.Errorf("last service %+v, want %+v", last, tt.last)
			}
			head := *a
			head.Services = nil
			if !reflect.DeepEqual(head, tt.want) {
				t.Errorf("arch %+v, want %+v", head, tt.want)
			}
			if got := a.Declared(); !reflect.DeepEqual(got, tt.declared) {
				t.Errorf("Declared() = %v, want %v", got, tt.declared)
			}
		})
	}
}

// TestReadArchDetails checks null dependencies and the optional fields.
func TestReadArchDetails(t *testing.T) {
	a, err := ReadArch(openFile(t, filepath.Join("testdata", "arch_storage.json")))
	if err != nil {
		t.Fatal(err)
	}
	if d := a.Services[0].Dependencies; d != nil {
		t.Errorf("null dependencies read as %v", d)
	}
	if s := a.Services[1]; s.Machine != "m1" || s.Container != "c1" || s.Count != 1 || s.Regions != 1 {
		t.Errorf("mysql = %+v", s)
	}
	if s := a.Services[2]; s.Count != 3 || s.Regions != 2 {
		t.Errorf("web = %+v", s)
	}
}

func TestReadArchErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", ``, []string{"architecture file", "unexpected EOF"}},
		{"unknown dependency", `{"services":[{"name":"a","dependencies":["b"]}]}`, []string{`service 0 ("a"): dependency "b" is not a service`, "byte 13"}},
		{"duplicate name", `{"services":[{"name":"a"},{"name":"a"}]}`, []string{`service 1: name "a" already used by service 0`, "byte 26"}},
		{"empty name", `{"services":[{"package":"x"}]}`, []string{"service 0: empty name"}},
		{"negative count", `{"services":[{"name":"a","count":-1}]}`, []string{"negative count"}},
		{"count is a string", `{"services":[{"name":"a","count":"2"}]}`, []string{"service 0", "byte 13", "cannot unmarshal"}},
		{"services not an array", `{"services":{}}`, []string{`"services": got an object, want an array`}},
		{"truncated", `{"arch":"lamp","services":[{"name":"a"}`, []string{"unexpected EOF"}},
		{"trailing comma", `{"arch":"lamp",}`, []string{"invalid character"}},
		{"trailing data", `{} x`, []string{"after the document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ReadArch(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("no error, arch %+v", a)
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
