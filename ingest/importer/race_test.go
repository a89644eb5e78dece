//go:build race

package importer

// raceEnabled reports whether the race detector is on.
const raceEnabled = true
