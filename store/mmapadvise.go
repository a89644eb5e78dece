package store

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// mappedCheckInterval is how often mappedLoop reads the process's
// file-backed resident memory.
const mappedCheckInterval = time.Second

// mappedLoop keeps the pages of the bbolt file mapped into the process
// (RssFile) under Options.MappedResidentLimit. bbolt maps the whole file;
// every page a reader, a checkpoint, a merge or retention touches stays
// resident in the process until the kernel needs the memory, so without
// this the process's RSS grows with the store. Past the limit the mapping
// is advised MADV_DONTNEED (dropMapped): on a shared file mapping that only
// unmaps the pages from the process — the data stays in the page cache and
// on disk, and the next access maps it again.
func (db *DB) mappedLoop() {
	defer db.wg.Done()
	limit := db.opts.MappedResidentLimit
	if limit < 0 || !mappedSupported {
		return
	}
	t := time.NewTicker(mappedCheckInterval)
	defer t.Stop()
	first, failed := true, false
	for {
		select {
		case <-db.closing:
			return
		case <-t.C:
		}
		rss, err := mappedResident()
		if err != nil {
			if !failed {
				db.logger.Warn("cannot read the process's file-backed memory; the store's pages are not unmapped until it can", "err", err)
				failed = true
			}
			continue
		}
		failed = false
		db.m.mappedResident.Set(float64(rss))
		if rss <= limit {
			continue
		}
		n, err := dropMapped(db.bolt)
		if err != nil {
			db.logger.Warn("advising the kernel about the store's pages failed", "err", err)
			continue
		}
		db.m.mappedDrops.Inc()
		if first {
			db.logger.Info("file-backed memory over the limit: unmapping the store's pages (they stay in the page cache)",
				"resident_bytes", rss, "limit_bytes", limit, "mapped_bytes", n)
			first = false
		} else {
			db.logger.Debug("unmapped the store's pages", "resident_bytes", rss, "mapped_bytes", n)
		}
	}
}

// mappedMetrics are the self-metrics of mappedLoop.
func mappedMetrics() (prometheus.Gauge, prometheus.Counter) {
	return prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flowscope_store_mapped_resident_bytes",
			Help: "File-backed resident memory of the process (mostly the store's memory-mapped file) at the last check; kept under store.Options.MappedResidentLimit.",
		}), prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowscope_store_mapped_drops_total",
			Help: "Times the store's mapped pages were unmapped from the process (madvise MADV_DONTNEED) because the file-backed resident memory passed store.Options.MappedResidentLimit.",
		})
}
