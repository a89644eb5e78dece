package aggregate

// Retries without a resend count.
//
// An HTTP client instrumentation marks a resend with
// http.request.resend_count, but many retries are plain repeated calls: a
// span makes a call, it fails, and the span makes the same call again. The
// aggregator remembers, for PairWait, the failed calls by (trace, calling
// span, callee node, operation): a later call with the same key that
// starts at or after the end of such a failed call is a retry. It is
// judged when the call is recorded (paired with its server half, or
// resolved as a virtual call), so a retry recorded before the call it
// retries (its server half came first) is not seen as one. The state is
// kept while rebuilding too, so that a crash replay counts the same
// retries; like pairing, whether a failure is still remembered depends on
// commit times only.

// maxSiblings bounds the failed calls remembered; beyond it new failures
// are not remembered (their retries are not recognized).
const maxSiblings = 1 << 17

type siblingKey struct {
	trace  [16]byte
	parent [8]byte
	dst    uint32
	name   uint32
}

type siblingVal struct {
	failEnd int64 // the earliest end of a remembered failed call
	commit  int64 // commit time of the latest failed call
}

// siblingRetry reports whether a call from the span parent (trace) to dst
// with operation name, in [start, end], is a retry of a failed call
// remembered; it remembers the call if it failed. A call without a parent
// is never one.
func (a *Aggregator) siblingRetry(trace [16]byte, parent [8]byte, dst, name uint32, start, end int64, failed bool) bool {
	if parent == ([8]byte{}) {
		return false
	}
	k := siblingKey{trace: trace, parent: parent, dst: dst, name: name}
	v, ok := a.sibs[k]
	live := ok && v.commit >= a.commit-a.pairWait
	retry := live && v.failEnd <= start
	if failed {
		if !live {
			if !ok && len(a.sibs) >= maxSiblings {
				return retry
			}
			v = siblingVal{failEnd: end}
		}
		v.failEnd, v.commit = min(v.failEnd, end), a.commit
		a.sibs[k] = v
		a.sibOrder = append(a.sibOrder, siblingAt{key: k, commit: a.commit})
	}
	return retry
}

type siblingAt struct {
	key    siblingKey
	commit int64
}

// expireSiblings forgets the failed calls committed before the watermark.
func (a *Aggregator) expireSiblings() {
	n := 0
	for n < len(a.sibOrder) && a.sibOrder[n].commit < a.watermark {
		s := a.sibOrder[n]
		if v, ok := a.sibs[s.key]; ok && v.commit == s.commit {
			delete(a.sibs, s.key)
		}
		n++
	}
	if n > 0 {
		a.sibOrder = append(a.sibOrder[:0], a.sibOrder[n:]...)
	}
}
