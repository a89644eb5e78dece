// Package jsondiff compares JSON documents for tests: which members and
// elements differ, by path.
package jsondiff

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Diff describes the differences between JSON documents a and b, at most
// max of them (then how many more), one per line, each with its path
// (.member[index]); "" when they are equal. Numbers compare as written by
// fmt of their float64 values; member order does not matter.
func Diff(a, b []byte, max int) string {
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		return "first document: " + err.Error()
	}
	if err := json.Unmarshal(b, &y); err != nil {
		return "second document: " + err.Error()
	}
	var diffs []string
	walk("", x, y, &diffs)
	if len(diffs) > max {
		diffs = append(diffs[:max], fmt.Sprintf("... and %d more", len(diffs)-max))
	}
	return strings.Join(diffs, "\n")
}

func walk(path string, x, y any, diffs *[]string) {
	switch xv := x.(type) {
	case map[string]any:
		yv, ok := y.(map[string]any)
		if !ok {
			*diffs = append(*diffs, fmt.Sprintf("%s: %v vs %v", path, x, y))
			return
		}
		keys := make([]string, 0, len(xv)+len(yv))
		for k := range xv {
			keys = append(keys, k)
		}
		for k := range yv {
			if _, ok := xv[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			xe, inX := xv[k]
			ye, inY := yv[k]
			switch {
			case !inX:
				*diffs = append(*diffs, fmt.Sprintf("%s.%s: absent vs %v", path, k, ye))
			case !inY:
				*diffs = append(*diffs, fmt.Sprintf("%s.%s: %v vs absent", path, k, xe))
			default:
				walk(path+"."+k, xe, ye, diffs)
			}
		}
	case []any:
		yv, ok := y.([]any)
		if !ok || len(xv) != len(yv) {
			*diffs = append(*diffs, fmt.Sprintf("%s: %d elements vs %s", path, len(xv), describe(y)))
			return
		}
		for i := range xv {
			walk(fmt.Sprintf("%s[%d]", path, i), xv[i], yv[i], diffs)
		}
	default:
		if fmt.Sprint(x) != fmt.Sprint(y) {
			*diffs = append(*diffs, fmt.Sprintf("%s: %v vs %v", path, x, y))
		}
	}
}

func describe(v any) string {
	if a, ok := v.([]any); ok {
		return fmt.Sprintf("%d elements", len(a))
	}
	return fmt.Sprint(v)
}
