// Package store keeps spans, metric points and their indexes in one bbolt
// file (FileName, in the data directory). FORMAT.md beside this file
// describes every bucket and record byte by byte.
//
// # Write path
//
// WriteTraces parses an OTLP export request with otlpwire, drops
// invalid spans (reported as a partial success), compresses the valid part
// (the request's own protobuf bytes, so a trace is returned exactly as sent)
// into a zstd chunk and queues it. A single committer goroutine writes every
// queued chunk in one bbolt transaction under sequential keys (group commit),
// fsyncs, publishes the chunks to the in-memory index and only then answers
// the writers. A write is acknowledged only after it is durable.
//
// The queue is bounded (Options.QueueBytes); past it writes fail at once with
// ErrOverloaded, which receivers turn into a retryable answer.
//
// # Aggregation
//
// After a commit, the publish goroutine adds the chunks to the in-memory
// index and acknowledges the writers; the aggregator goroutine then applies
// them, in commit order, to the live rollups (package aggregate: HDR latency
// histograms per service, operation, kind and status, and per call edge).
// Rollup queries (FlowGraph, Latency) first wait, for at most 5 seconds,
// until every batch acknowledged before they started is applied, so they
// see everything acknowledged — typically within milliseconds — while
// acknowledgement never waits for aggregation. The aggregator reads an
// owned copy of each request, released after it is applied.
//
// Every second the rollup deltas are persisted with a replay checkpoint;
// every ten seconds closed windows are compacted into 1-minute and 1-hour
// tiers. FORMAT.md ("Rollups") has the details, including how a restart
// after SIGKILL reproduces the aggregates exactly.
//
// # Indexes
//
// Chunks committed since the last checkpoint are indexed in memory (the
// tail): trace ID → chunks, index term → chunks, and per-service span counts
// per second. Every CheckpointInterval (or CheckpointSpans, or once the
// tail is estimated at CheckpointBytes) the tail is persisted as a
// segment: postings per term, keyed by segment then term and so appended
// at the end of bucket "postings" (older files keep earlier segments'
// postings in "terms"), chunk bounds and service counts ("segs") and a
// sorted trace-ID run ("runs", "runpages"). Every write of a checkpoint
// appends: its cost does not grow with the store. Runs are merged eight at
// a time into larger runs so that a trace lookup reads few runs. The
// chunks are the log: after a crash, the start re-indexes the chunks
// committed after the last checkpoint, so nothing acknowledged is lost and
// the indexes never need to be written per request.
//
// # Restart and memory
//
// Open returns once the file is open and its catalog loaded. Two pieces of
// work follow in the background, each reading the chunks on a goroutine of
// its own: the re-index of the chunks committed after the last checkpoint
// (reindexTail; trace reads, searches and the service list wait for it,
// and so do checkpoints, so that segments are persisted in chunk order),
// and the aggregator's state load or replay (replayAggregator), before the
// first new batch is applied (rollup queries wait for it). A query waits at
// most AggregationWait, then fails with ErrWarmingUp. A clean Close writes
// bbolt's freelist, so the next Open does not walk the file.
// mappedLoop keeps the file's pages mapped into the process under
// MappedResidentLimit (MADV_DONTNEED; they stay in the page cache).
//
// # Reads
//
// Readers take the in-memory segments, then the catalog of persisted
// segments and runs together with a bbolt read transaction (under the
// catalog lock), so a checkpoint or merge running at the same time never
// hides data from them. Search walks segments newest first, intersects the
// postings of the query's terms to find candidate chunks, and checks every
// span of those chunks against the query.
//
// # Retention
//
// A background loop deletes, oldest first, segments whose newest commit and
// newest span end are both older than Options.Retention, in transactions of
// bounded size so that ingest is never held for long. Imported data with old
// timestamps is therefore kept for the retention period after its import.
// Metric chunks expire the same way.
//
// # Caveats
//
//   - A long read transaction delays a commit that must grow the memory map
//     (bbolt's rule); the map starts at 1 GiB to make that rare.
//   - Operations ("ops") are kept forever: they are few.
//   - A request whose client gave up (context cancelled) while queued is
//     still committed; the client may retry and store the spans twice. Trace
//     reads show a span ID once.
package store
