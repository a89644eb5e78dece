package yamlfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// TooLargeError is the error of a file over a size limit.
type TooLargeError struct {
	// Limit is the largest size allowed, in bytes.
	Limit int64
}

// Error implements error: "file larger than 4194304 bytes (4 MiB)".
func (e *TooLargeError) Error() string {
	var unit string
	switch {
	case e.Limit >= 1<<20 && e.Limit%(1<<20) == 0:
		unit = fmt.Sprintf(" (%d MiB)", e.Limit>>20)
	case e.Limit >= 1<<10 && e.Limit%(1<<10) == 0:
		unit = fmt.Sprintf(" (%d KiB)", e.Limit>>10)
	}
	return fmt.Sprintf("file larger than %d bytes%s", e.Limit, unit)
}

// ReadFile reads the file name, of at most limit bytes: a larger one is a
// *TooLargeError, read no further than the limit.
func ReadFile(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{Limit: limit}
	}
	return data, nil
}

// Files returns the YAML files at path: path itself, whatever its name,
// when it is not a directory; else every *.yml and *.yaml file of the
// directory in name order, without its subdirectories and the names that
// begin with "." (symbolic links are followed). It reports the errors of
// the file system to c (FileErr), and returns nil when path cannot be
// read.
func (c *Collector) Files(path string) []string {
	st, err := os.Stat(path)
	if err != nil {
		c.FileErr(path, err)
		return nil
	}
	if !st.IsDir() {
		return []string{path}
	}
	ents, err := os.ReadDir(path) // sorted by name
	if err != nil {
		c.FileErr(path, err)
		return nil
	}
	var files []string
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".yaml")) {
			continue
		}
		full := filepath.Join(path, name)
		fst, err := os.Stat(full) // follows symbolic links
		if err != nil {
			c.FileErr(full, err)
			continue
		}
		if fst.Mode().IsRegular() {
			files = append(files, full)
		}
	}
	return files
}
