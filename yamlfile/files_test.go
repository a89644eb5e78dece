package yamlfile

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f.yml")
	if err := os.WriteFile(name, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int64{5, 6} {
		if data, err := ReadFile(name, limit); err != nil || string(data) != "12345" {
			t.Errorf("limit %d: %q, %v", limit, data, err)
		}
	}
	_, err := ReadFile(name, 4)
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Limit != 4 {
		t.Errorf("limit 4: %v", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "nope"), 4); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestTooLargeError(t *testing.T) {
	cases := []struct {
		limit int64
		want  string
	}{
		{4 << 20, "file larger than 4194304 bytes (4 MiB)"},
		{64 << 10, "file larger than 65536 bytes (64 KiB)"},
		{1536 << 10, "file larger than 1572864 bytes (1536 KiB)"},
		{1000, "file larger than 1000 bytes"},
		{0, "file larger than 0 bytes"},
	}
	for _, c := range cases {
		if got := (&TooLargeError{Limit: c.limit}).Error(); got != c.want {
			t.Errorf("%d: got %q, want %q", c.limit, got, c.want)
		}
	}
}

func TestFiles(t *testing.T) {
	// Kubernetes mounts a ConfigMap as symbolic links into a hidden
	// directory: the links are followed, the hidden entries skipped.
	k8s := t.TempDir()
	if err := os.Mkdir(filepath.Join(k8s, "..data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(k8s, "..data", "a.yml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	symlinks := os.Symlink(filepath.Join("..data", "a.yml"), filepath.Join(k8s, "a.yml")) == nil
	broken := t.TempDir()
	if symlinks {
		if err := os.Symlink("nope.yml", filepath.Join(broken, "b.yml")); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(t.TempDir(), "nope")

	cases := []struct {
		name, path string
		want, errs []string
		symlinks   bool
	}{
		{name: "directory", path: "testdata/dir", want: []string{"testdata/dir/a.yml", "testdata/dir/b.yaml"}},
		{name: "file", path: "testdata/dir/a.yml", want: []string{"testdata/dir/a.yml"}},
		{name: "file of any name", path: "testdata/dir/notes.txt", want: []string{"testdata/dir/notes.txt"}},
		{name: "empty directory", path: t.TempDir()},
		{name: "missing", path: missing, errs: []string{missing + ": no such file or directory"}},
		{name: "symbolic links", path: k8s, want: []string{filepath.Join(k8s, "a.yml")}, symlinks: true},
		{name: "broken symbolic link", path: broken, errs: []string{filepath.Join(broken, "b.yml") + ": no such file or directory"}, symlinks: true},
	}
	for _, c := range cases {
		if c.symlinks && !symlinks {
			t.Logf("%s: skipped, no symbolic links", c.name)
			continue
		}
		col := &Collector{File: "other"}
		got := col.Files(c.path)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
		if errs := errorStrings(col.Err()); !slices.Equal(errs, c.errs) {
			t.Errorf("%s: errors %q, want %q", c.name, errs, c.errs)
		}
		if col.File != "other" {
			t.Errorf("%s: File %q", c.name, col.File)
		}
	}
}
