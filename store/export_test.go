package store

// Hooks for the benchmarks of package store_test, which simulate a day
// of a running collector.

// FlushRollupsForTest persists the rollup deltas (force: the open windows
// too), as the flush loop does.
func (db *DB) FlushRollupsForTest(force bool) error { return db.flushRollups(force) }

// CompactRollupsForTest compacts rollup windows into the coarser tiers.
func (db *DB) CompactRollupsForTest() error { return db.compactRollups() }

// CheckpointForTest persists the in-memory index as a segment.
func (db *DB) CheckpointForTest() error { return db.checkpoint() }
