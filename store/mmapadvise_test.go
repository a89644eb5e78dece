//go:build linux

package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	bolt "go.etcd.io/bbolt"
)

// rssFile reads RssFile from /proc/self/status, in bytes.
func rssFile(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "RssFile:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// fillBucket writes n values of size bytes into bucket "mmaptest" and
// returns the value of key i.
func fillBucket(t testing.TB, db *DB, n, size int) func(i int) []byte {
	t.Helper()
	val := func(i int) []byte {
		v := make([]byte, size)
		for j := 0; j < size; j += 8 {
			binary.LittleEndian.PutUint64(v[j:], uint64(i)*0x9e3779b97f4a7c15^uint64(j))
		}
		return v
	}
	for from := 0; from < n; from += 256 {
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("mmaptest"))
			if err != nil {
				return err
			}
			for i := from; i < min(n, from+256); i++ {
				if err := b.Put(u64(uint64(i)), val(i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return val
}

// readAll reads every value of bucket "mmaptest" through the map and
// checks it: at least n values.
func readAll(t testing.TB, db *DB, n int, val func(int) []byte) {
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte("mmaptest")).Cursor()
		i := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if binary.BigEndian.Uint64(k) != uint64(i) || !bytes.Equal(v, val(i)) {
				t.Errorf("value %d differs", i)
				return nil
			}
			i++
		}
		if i < n {
			t.Errorf("read %d values, want at least %d", i, n)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestDropMapped checks that reading the file maps its pages into the
// process and that dropMapped unmaps them, the data unchanged.
func TestDropMapped(t *testing.T) {
	db, err := Open(t.TempDir(), Options{MappedResidentLimit: -1, CheckpointInterval: time.Hour, RetentionInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	const n, size = 4096, 16 << 10 // 64 MiB
	val := fillBucket(t, db, n, size)
	if _, err := dropMapped(db.bolt); err != nil {
		t.Fatal(err)
	}
	before := rssFile(t)
	readAll(t, db, n, val)
	read := rssFile(t)
	if read-before < 32<<20 {
		t.Fatalf("reading 64 MiB through the map raised RssFile by %d bytes only", read-before)
	}
	mapped, err := dropMapped(db.bolt)
	if err != nil {
		t.Fatal(err)
	}
	after := rssFile(t)
	t.Logf("RssFile %d MiB → %d MiB after reading → %d MiB after dropping %d MiB of mapping", before>>20, read>>20, after>>20, mapped>>20)
	if read-after < (read-before)*3/4 {
		t.Fatalf("dropMapped freed %d of the %d bytes the reads mapped", read-after, read-before)
	}
	readAll(t, db, n, val)
}

// TestMappedLoop checks that the store drops its mapped pages by itself
// once they pass MappedResidentLimit.
func TestMappedLoop(t *testing.T) {
	db, err := Open(t.TempDir(), Options{MappedResidentLimit: 8 << 20, CheckpointInterval: time.Hour, RetentionInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	const n, size = 2048, 16 << 10
	val := fillBucket(t, db, n, size)
	readAll(t, db, n, val)
	deadline := time.Now().Add(10 * time.Second)
	drops := func() float64 {
		var m dto.Metric
		if err := db.m.mappedDrops.Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	for drops() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no drop within 10 s with RssFile at %d bytes over a limit of 8 MiB", rssFile(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDropMappedConcurrentReads drops the mapping again and again while
// readers walk the file: every value read is right (run with -race).
func TestDropMappedConcurrentReads(t *testing.T) {
	db, err := Open(t.TempDir(), Options{MappedResidentLimit: -1, CheckpointInterval: time.Hour, RetentionInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	const n, size = 1024, 8 << 10
	val := fillBucket(t, db, n, size)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 5; k++ {
				readAll(t, db, n, val)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := dropMapped(db.bolt); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	// Writes grow the file (and the map) meanwhile.
	fillBucket(t, db, 2*n, size)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
}

// BenchmarkDropMapped measures one drop of a 64 MiB mapping and reading
// the file back through the map after it.
func BenchmarkDropMapped(b *testing.B) {
	db, err := Open(b.TempDir(), Options{MappedResidentLimit: -1, CheckpointInterval: time.Hour, RetentionInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const n, size = 4096, 16 << 10
	val := fillBucket(b, db, n, size)
	var drop, refault time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := dropMapped(db.bolt); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		readAll(b, db, n, val)
		drop += t1.Sub(t0)
		refault += time.Since(t1)
	}
	b.ReportMetric(float64(drop.Microseconds())/float64(b.N), "drop-µs")
	b.ReportMetric(float64(refault.Microseconds())/float64(b.N), "read64MiB-µs")
}

// TestDropMappedDuringRemap drops the mapping of a raw bbolt file again
// and again while it grows from a 32 KiB map to 48 MiB (remapped about ten
// times) and readers walk it: a drop must never touch memory that is no
// longer the mapping, and every value read is right.
func TestDropMappedDuringRemap(t *testing.T) {
	b, err := bolt.Open(filepath.Join(t.TempDir(), "remap.db"), 0o600, &bolt.Options{NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const total, size, step = 12288, 4096, 256 // 48 MiB, 1 MiB per transaction
	val := func(i int) []byte { return bytes.Repeat([]byte{byte(i), byte(i >> 8), 0x5a, 0xa5}, size/4) }
	put := func(from, to int) error {
		return b.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("remap"))
			if err != nil {
				return err
			}
			for i := from; i < to; i++ {
				if err := bk.Put(u64(uint64(i)), val(i)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	scan := func() (int, error) {
		n := 0
		err := b.View(func(tx *bolt.Tx) error {
			bk := tx.Bucket([]byte("remap"))
			if bk == nil {
				return nil
			}
			return bk.ForEach(func(k, v []byte) error {
				i := int(binary.BigEndian.Uint64(k))
				if !bytes.Equal(v, val(i)) {
					return fmt.Errorf("value %d differs", i)
				}
				n++
				return nil
			})
		})
		return n, err
	}
	var written atomic.Int64
	errc := make(chan error, 8)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for lo := 0; lo < total; lo += step {
			if err := put(lo, lo+step); err != nil {
				errc <- err
				return
			}
			written.Store(int64(lo + step))
		}
	}()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				least := written.Load()
				n, err := scan()
				if err == nil && int64(n) < least {
					err = fmt.Errorf("scan read %d values, want at least %d", n, least)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	drops := 0
	for running := true; running; drops++ {
		select {
		case <-done:
			running = false
		default:
		}
		if _, err := dropMapped(b); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if n, err := scan(); err != nil || n != total {
		t.Errorf("final scan: %d values of %d, %v", n, total, err)
	}
	t.Logf("%d drops while the file grew to 48 MiB", drops)
}
