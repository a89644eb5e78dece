// Package yamlfile holds what Flowscope's YAML configuration parsers share:
// located errors (file, line, key), error collection, reading a file or a
// directory of YAML files, walking yaml.v3 mappings with anchors and merge
// keys, and suggestions for mistyped keys.
//
// A parser built on it reports its problems to a Collector, which records
// each as an *Error naming the file, the line and the dotted key, and joins
// them (errors.Join) at the end. Format reads the common shape of such
// files, a list of named items under one top-level key, from one file or a
// directory, and calls the parser for each item.
package yamlfile

import (
	"fmt"
	"unicode/utf8"
)

// Error is a problem with a YAML file, located by file, line and key.
type Error struct {
	File string
	Line int    // 1-based; 0 when the problem is not on one line
	Key  string // dotted path, e.g. "rules[2].window"; "" for the file
	Msg  string
}

// Error implements error: "FILE:LINE: KEY: MSG", without the line or the
// key when there is none.
func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Key != "":
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.Key != "":
		return fmt.Sprintf("%s: %s: %s", e.File, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Clip shortens s to at most n bytes and "…", cutting at a character
// boundary, for messages that quote what a file says.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
