package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// Format describes files that hold a list of named items under one
// top-level key, such as rule files (`rules:`) and checks files
// (`checks:`), and reads them: Parse reads one file, Load a file or a
// directory of files whose items make one set. A file is one YAML
// document, a mapping; its other top-level keys are errors, but for those
// beginning with "x-", which are left for anchors. Item names must be
// unique in the set. Everything is validated: on failure Parse and Load
// return no items and every problem, each an *Error, joined. Format's
// strings word the messages.
type Format[T any] struct {
	// Key is the top-level key of the list; it also names the items
	// ("rules").
	Key string
	// File names a file ("rule file"); Set the items of all the files
	// ("rule set").
	File, Set string
	// NameKey is the key of an item's name ("alert"), and Name what the
	// name is ("alert name"), for the errors about a name defined twice.
	NameKey, Name string
	// MaxSize is the largest file, in bytes.
	MaxSize int64
	// MaxItems is the most items a set (a file, or all the files of a
	// directory) may hold.
	MaxItems int
	// MaxErrors is how many errors are reported in full (Collector.Max).
	MaxErrors int
	// Budget bounds the work of reading each file (Collector.SetBudget);
	// 0 for no limit.
	Budget int
	// Describe names a node's value in messages (Collector.Describe).
	Describe func(*yaml.Node) string
	// Unknown returns the message for a top-level key that is neither
	// Key nor an x-… key; nil means "unknown key".
	Unknown func(key string) string
	// Item parses the i-th item of the list, n, and reports its problems
	// to c (whose File is the item's file), under keys that begin with
	// Key[i]. It returns the item, its name ("" when it has no valid
	// name) and the line of that name, and whether the item is valid.
	Item func(c *Collector, i int, n *yaml.Node) (item T, name string, nameLine int, ok bool)
}

// Parse reads one file, data; file names it in errors. It returns the
// file's items, or nil and the error joining its problems. A file with
// `Key: []`, or the key and no list, has no items and is no error; an
// empty file is an error.
func (f *Format[T]) Parse(file string, data []byte) ([]T, error) {
	c := f.collector(file)
	items, _ := f.parse(c, data)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return items, nil
}

// Load reads the files at path (see Collector.Files) in order and returns
// their items, or nil and the error joining the problems of all the files.
// A missing path, a directory without YAML files, a file over MaxSize and
// a set of more than MaxItems items are errors, and so is an item name
// that two files define.
func (f *Format[T]) Load(path string) ([]T, error) {
	c := f.collector(path)
	files := c.Files(path)
	if len(files) == 0 {
		if c.Count() == 0 {
			c.Add(0, "", "no %ss (*.yml or *.yaml) in this directory", f.File)
		}
		return nil, c.Err()
	}
	type origin struct {
		file string
		line int
	}
	var all []T
	seen := map[string]origin{}
	for _, file := range files {
		c.File = file
		data, err := ReadFile(file, f.MaxSize)
		if err != nil {
			c.FileErr(file, err)
			continue
		}
		items, names := f.parse(c, data)
		for i, n := range names {
			if o, dup := seen[n.name]; dup {
				c.Add(n.line, fmt.Sprintf("%s[%d].%s", f.Key, i, f.NameKey),
					"duplicate %s %q (also defined at %s:%d); names must be unique across the %ss", f.Name, n.name, o.file, o.line, f.File)
				continue
			}
			seen[n.name] = origin{file, n.line}
		}
		all = append(all, items...)
	}
	if len(all) > f.MaxItems && len(files) > 1 {
		c.File = path
		c.Add(0, "", "%d %s in all; a %s holds at most %d", len(all), f.Key, f.Set, f.MaxItems)
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return all, nil
}

func (f *Format[T]) collector(file string) *Collector {
	return &Collector{File: file, Max: f.MaxErrors, Describe: f.Describe}
}

// named is the name of an item and its line.
type named struct {
	name string
	line int
}

// parse parses one file's items, reporting its problems to c, sorted by
// line; names[i] is the name of item i. It returns the items when the
// file has no error.
func (f *Format[T]) parse(c *Collector, data []byte) (items []T, names []named) {
	start := c.Count()
	defer c.sortFrom(len(c.errs))
	c.SetBudget(f.Budget)
	if int64(len(data)) > f.MaxSize {
		c.Add(0, "", "%v", &TooLargeError{Limit: f.MaxSize})
		return nil, nil
	}
	root := f.root(c, data)
	if root == nil {
		return nil, nil
	}
	var list *yaml.Node
	for _, kv := range c.Pairs(root, "") {
		switch {
		case kv.Name == f.Key:
			list = kv.V
		case strings.HasPrefix(kv.Name, "x-"):
			// An extension: anchors for the items to reuse.
		case f.Unknown == nil:
			c.Add(kv.K.Line, kv.Name, "unknown key")
		default:
			c.Add(kv.K.Line, kv.Name, "%s", f.Unknown(kv.Name))
		}
	}
	switch {
	case list == nil:
		c.Add(root.Line, f.Key, "missing: want `%s:` with a list of %s", f.Key, f.Key)
		return nil, nil
	case IsNull(list):
		return nil, nil
	case list.Kind != yaml.SequenceNode:
		c.Add(list.Line, f.Key, "must be a list of %s, not %s", f.Key, c.describe(list))
		return nil, nil
	case len(list.Content) > f.MaxItems:
		c.Add(list.Line, f.Key, "%d %s; a %s holds at most %d", len(list.Content), f.Key, f.Set, f.MaxItems)
		return nil, nil
	}
	first := map[string]int{}
	for i, n := range c.Items(list) {
		item, name, nameLine, ok := f.Item(c, i, n)
		if name != "" {
			if l, dup := first[name]; dup {
				c.Add(nameLine, fmt.Sprintf("%s[%d].%s", f.Key, i, f.NameKey), "duplicate %s %q (first defined at %s:%d)", f.Name, name, c.File, l)
				ok = false
			} else {
				first[name] = nameLine
			}
		}
		if ok {
			items = append(items, item)
			names = append(names, named{name, nameLine})
		}
	}
	if c.Count() > start {
		return nil, nil
	}
	return items, names
}

// root decodes data, one YAML document, and returns the mapping at its
// top (aliases followed); nil, with the problem reported, when there is
// none.
func (f *Format[T]) root(c *Collector, data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			c.Add(0, "", "empty file: want a `%s:` list", f.Key)
		} else {
			c.syntaxErr(err)
		}
		return nil
	}
	var extra yaml.Node
	if err := decode(dec, &extra); err == nil {
		c.Add(extra.Line, "", "a second YAML document; a %s holds one", f.File)
	} else if !errors.Is(err, io.EOF) {
		c.syntaxErr(err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			c.Add(0, "", "empty file: want a `%s:` list", f.Key)
			return nil
		}
		root = root.Content[0]
	}
	root = Resolve(root)
	if root.Kind != yaml.MappingNode {
		c.Add(root.Line, "", "want a mapping with a `%s:` list, not %s", f.Key, c.describe(root))
		return nil
	}
	return root
}

// decode decodes one YAML document into n, turning a panic of the decoder
// into an error.
func decode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(n)
}
