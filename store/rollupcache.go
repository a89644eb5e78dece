package store

import (
	"container/list"
	"sync"
)

// windowCache keeps decompressed rollup records for queries, which merge
// them with AddEncoded. Records are immutable once written (compaction
// writes new ones and retention deletes old ones). The cache holds plain
// bytes, not decoded windows, so it costs the garbage collector nothing to
// scan. Bounded by total size.
type windowCache struct {
	mu       sync.Mutex
	maxBytes int
	bytes    int
	ll       *list.List
	m        map[string]*list.Element
}

type cacheEntry struct {
	key string
	raw []byte
}

func newWindowCache(maxBytes int) *windowCache {
	return &windowCache{maxBytes: maxBytes, ll: list.New(), m: map[string]*list.Element{}}
}

func (c *windowCache) get(key []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[string(key)]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*cacheEntry).raw
	}
	return nil
}

func (c *windowCache) put(key []byte, raw []byte) {
	size := len(raw)
	if size > c.maxBytes/8 {
		return // one record must not flush the cache
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[string(key)]; ok {
		return
	}
	c.m[string(key)] = c.ll.PushFront(&cacheEntry{key: string(key), raw: raw})
	c.bytes += size
	for c.bytes > c.maxBytes {
		e := c.ll.Back()
		ce := e.Value.(*cacheEntry)
		c.ll.Remove(e)
		delete(c.m, ce.key)
		c.bytes -= len(ce.raw)
	}
}
