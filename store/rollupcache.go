package store

import (
	"container/list"
	"sync"

	"github.com/flowscope/flowscope/aggregate"
)

// windowCache keeps decoded rollup records. Records are immutable once
// written (compaction writes new ones and retention deletes old ones), and
// accumulators only read the windows they are given, so a decoded window
// can be shared by concurrent queries. Bounded by the encoded size of the
// cached records.
type windowCache struct {
	mu       sync.Mutex
	maxBytes int
	bytes    int
	ll       *list.List
	m        map[string]*list.Element
	hits     int64
	misses   int64
}

type cacheEntry struct {
	key  string
	w    *aggregate.Window
	size int
}

func newWindowCache(maxBytes int) *windowCache {
	return &windowCache{maxBytes: maxBytes, ll: list.New(), m: map[string]*list.Element{}}
}

func (c *windowCache) get(key []byte) *aggregate.Window {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[string(key)]; ok {
		c.ll.MoveToFront(e)
		c.hits++
		return e.Value.(*cacheEntry).w
	}
	c.misses++
	return nil
}

func (c *windowCache) put(key []byte, w *aggregate.Window, size int) {
	if size > c.maxBytes/8 {
		return // one record must not flush the cache
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[string(key)]; ok {
		return
	}
	c.m[string(key)] = c.ll.PushFront(&cacheEntry{key: string(key), w: w, size: size})
	c.bytes += size
	for c.bytes > c.maxBytes {
		e := c.ll.Back()
		ce := e.Value.(*cacheEntry)
		c.ll.Remove(e)
		delete(c.m, ce.key)
		c.bytes -= ce.size
	}
}
