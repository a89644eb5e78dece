// Package yamlfiletest holds test helpers for the parsers built on
// yamlfile.
package yamlfiletest

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/flowscope/flowscope/yamlfile"
)

// Errors returns the *yamlfile.Error values joined in err (errors.Join),
// or err itself; it fails the test when err holds another error.
func Errors(t testing.TB, err error) []*yamlfile.Error {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]*yamlfile.Error, 0, len(errs))
	for _, e := range errs {
		ye, ok := e.(*yamlfile.Error)
		if !ok {
			t.Fatalf("error %v (%T) is not a *yamlfile.Error", e, e)
		}
		out = append(out, ye)
	}
	return out
}

// WriteFile writes text to the file name of dir.
func WriteFile(t testing.TB, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ParseFile reads the file at path and parses it with parse, which names
// it path.
func ParseFile[T any](t testing.TB, path string, parse func(file string, data []byte) (T, error)) (T, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parse(path, data)
}

// AddFiles adds the files that match the patterns (filepath.Glob) to the
// fuzz test's corpus.
func AddFiles(f *testing.F, patterns ...string) {
	f.Helper()
	for _, pattern := range patterns {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
}

// Parse parses data, named file, with parse twice and checks what a
// parser built on yamlfile.Format promises: on failure no items and an
// error joining *yamlfile.Error values that name the file, each with a
// message; the same items and error the second time. It returns the
// items.
func Parse[T any](t testing.TB, parse func(file string, data []byte) ([]T, error), file string, data []byte) []T {
	t.Helper()
	items, err := parse(file, data)
	if err != nil {
		if items != nil {
			t.Fatalf("items %+v with the error %v", items, err)
		}
		for _, e := range Errors(t, err) {
			if e.File != file || e.Line < 0 || e.Msg == "" {
				t.Fatalf("bad error %#v", e)
			}
		}
	}
	items2, err2 := parse(file, data)
	if !reflect.DeepEqual(items, items2) || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
		t.Fatalf("second parse differs:\n%v\n%v", err, err2)
	}
	return items
}
