package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestImportAgain imports a file into a store directory, then again: the
// second import sends nothing and says so; --force imports it again.
func TestImportAgain(t *testing.T) {
	dir := t.TempDir()
	const file = "../../testdata/spigo/json_metrics/lamp_flow.json"
	cases := []struct {
		name       string
		args       []string
		want, skip string // in stdout; must not be in stdout
	}{
		{"first", nil, "requests:     1", "already:"},
		{"again", nil, "already:      imported", "requests:     1"},
		{"forced", []string{"--force"}, "requests:     1", "already:"},
		{"json", []string{"--json"}, `"alreadyImported": true`, "already:"},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		args := append([]string{"--data-dir", dir, "--progress", "none"}, tc.args...)
		if code := importCmd(append(args, file), &stdout, &stderr); code != exitOK {
			t.Fatalf("%s: exit %d: %s", tc.name, code, stderr.String())
		}
		out := stdout.String()
		if !strings.Contains(out, tc.want) || strings.Contains(out, tc.skip) {
			t.Errorf("%s: output lacks %q or has %q:\n%s", tc.name, tc.want, tc.skip, out)
		}
	}
}
