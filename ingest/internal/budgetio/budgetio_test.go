package budgetio

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/flowscope/flowscope/membudget"
)

// trickleReader yields data step bytes per Read, recording after every
// Read the most the reservation held and the most it held beyond what the
// body needed so far.
type trickleReader struct {
	data []byte
	step int
	res  *Reservation
	read int
	// worst is the largest res.Held() seen at a Read, relative to the
	// bytes delivered before it: held ≤ max(InitialBytes, 2×read) is the
	// promise.
	worst int64
}

func (r *trickleReader) Read(p []byte) (int, error) {
	if held, bound := r.res.Held(), max(int64(InitialBytes), 2*int64(r.read)); held > bound {
		r.worst = max(r.worst, held-bound)
	}
	if r.read == len(r.data) {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.step)], r.data[r.read:])
	r.read += n
	return n, nil
}

func TestReadAll(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	tests := []struct {
		name     string
		size     int   // bytes the reader yields
		step     int   // bytes per Read
		hint     int64 // declared Content-Length
		maxBytes int64
		budget   int64 // 0: unlimited
		pooled   int   // capacity of the buffer passed in
		wantErr  error
		admitted bool
		// most the budget may have held at once (0: not checked)
		peak int64
	}{
		{name: "empty", size: 0, step: 1, hint: 0, maxBytes: 1 << 20, admitted: true, peak: InitialBytes},
		{name: "small with hint", size: 100, step: 100, hint: 100, maxBytes: 1 << 20, admitted: true, peak: 101},
		{name: "small without hint", size: 100, step: 7, hint: -1, maxBytes: 1 << 20, admitted: true, peak: InitialBytes},
		{name: "exact hint, big", size: 1_000_000, step: 4096, hint: 1_000_000, maxBytes: 16 << 20, admitted: true,
			peak: 512<<10 + 1_000_001}, // the 512 KiB array is copied into the final one
		{name: "no hint, big", size: 1_000_000, step: 32 << 10, hint: -1, maxBytes: 16 << 20, admitted: true,
			peak: 512<<10 + 1<<20},
		{name: "low hint", size: 300_000, step: 10_000, hint: 1000, maxBytes: 16 << 20, admitted: true},
		{name: "pooled buffer is not trusted", size: 200_000, step: 1000, hint: -1, maxBytes: 16 << 20, pooled: 1 << 20, admitted: true,
			peak: 256 << 10},
		{name: "exactly the limit", size: 4096, step: 4096, hint: -1, maxBytes: 4096, admitted: true},
		{name: "refused before reading", size: 1000, step: 1000, hint: 1000, maxBytes: 1 << 20, budget: 1000, admitted: false},
		{name: "refused while growing", size: 1 << 20, step: 8192, hint: 1 << 20, maxBytes: 16 << 20, budget: 300 << 10,
			admitted: true, wantErr: ErrOverBudget, peak: 300 << 10},
		{name: "fits a tight budget", size: 100_000, step: 8192, hint: 100_000, maxBytes: 16 << 20, budget: 64<<10 + 100_001,
			admitted: true, peak: 64<<10 + 100_001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b *membudget.Budget
			if tt.budget > 0 {
				b = membudget.New(tt.budget)
			} else {
				b = membudget.New(1 << 40)
			}
			res := &Reservation{Budget: b}
			data := random(tt.size)
			src := &trickleReader{data: data, step: tt.step, res: res}
			body, ok := Admit(res, tt.hint, tt.maxBytes)
			if ok != tt.admitted {
				t.Fatalf("Admit = %v, want %v", ok, tt.admitted)
			}
			if !ok {
				if res.Held() != 0 || b.Used() != 0 {
					t.Fatalf("a refused Admit holds %d (budget %d)", res.Held(), b.Used())
				}
				return
			}
			got, err := body.ReadAll(make([]byte, 0, tt.pooled), src)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadAll error %v, want %v", err, tt.wantErr)
			}
			if err == nil && !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, not the %d sent", len(got), len(data))
			}
			if src.worst > 0 {
				t.Errorf("held up to %d bytes more than max(InitialBytes, 2×received)", src.worst)
			}
			if res.Held() != b.Used() {
				t.Errorf("reservation holds %d, budget counts %d", res.Held(), b.Used())
			}
			if err == nil && res.Held() < int64(len(got)) {
				t.Errorf("reservation %d does not cover the %d bytes read", res.Held(), len(got))
			}
			if tt.peak > 0 && b.Peak() > tt.peak {
				t.Errorf("budget peak %d, want at most %d", b.Peak(), tt.peak)
			}
			res.Release()
			if b.Used() != 0 {
				t.Errorf("budget still holds %d after Release", b.Used())
			}
		})
	}
}

// TestReadAllPastMax checks that a reader yielding more than maxBytes+1
// bytes (a caller without a limit reader) fails instead of growing on.
func TestReadAllPastMax(t *testing.T) {
	res := &Reservation{}
	body, ok := Admit(res, -1, 1000)
	if !ok {
		t.Fatal("not admitted")
	}
	_, err := body.ReadAll(nil, bytes.NewReader(make([]byte, 5000)))
	if !errors.Is(err, errPastMax) {
		t.Fatalf("error %v, want %v", err, errPastMax)
	}
}

func TestReservation(t *testing.T) {
	b := membudget.New(100)
	r := Reservation{Budget: b}
	steps := []struct {
		op      string
		n       int64
		ok      bool
		held    int64
		usedNow int64
	}{
		{"grow", 60, true, 60, 60},
		{"grow", 50, false, 60, 60},
		{"hold", 50, true, 110, 110}, // past the limit: already allocated
		{"shrink", 30, true, 80, 80},
		{"shrink", 1000, true, 0, 0}, // at most what is held
		{"grow", 100, true, 100, 100},
		{"release", 0, true, 0, 0},
	}
	for i, s := range steps {
		ok := true
		switch s.op {
		case "grow":
			ok = r.Grow(s.n)
		case "hold":
			r.Hold(s.n)
		case "shrink":
			r.Shrink(s.n)
		case "release":
			r.Release()
		}
		if ok != s.ok || r.Held() != s.held || b.Used() != s.usedNow {
			t.Fatalf("step %d %s(%d): ok %v held %d used %d, want %v %d %d", i, s.op, s.n, ok, r.Held(), b.Used(), s.ok, s.held, s.usedNow)
		}
	}
}

func TestPool(t *testing.T) {
	// Drain what other tests left.
	for GetBuffer() != nil {
	}
	PutBuffer(make([]byte, 10, MaxPooledBytes+1)) // too large: dropped
	PutBuffer(nil)                                // nothing to keep
	if b := GetBuffer(); b != nil {
		t.Fatalf("pool kept a buffer of capacity %d", cap(b))
	}
	for range PoolSlots + 5 {
		PutBuffer(make([]byte, 10, 4096))
	}
	n := 0
	for b := GetBuffer(); b != nil; b = GetBuffer() {
		if len(b) != 0 {
			t.Fatalf("pooled buffer of length %d", len(b))
		}
		n++
	}
	if n != PoolSlots {
		t.Fatalf("pool kept %d buffers, want %d", n, PoolSlots)
	}
}

// BenchmarkReadAll reads a 128 KiB body from a pooled buffer, as the
// receivers do for a typical SDK batch:
//
//	go test ./ingest/internal/budgetio -run='^$' -bench=ReadAll -count=6 > new.txt
//	benchstat old.txt new.txt
func BenchmarkReadAll(b *testing.B) {
	data := make([]byte, 128<<10)
	budget := membudget.New(1 << 30)
	rd := bytes.NewReader(data)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(data)
		res := Reservation{Budget: budget}
		body, _ := Admit(&res, int64(len(data)), 16<<20)
		buf, err := body.ReadAll(GetBuffer(), rd)
		if err != nil {
			b.Fatal(err)
		}
		PutBuffer(buf)
		res.Release()
	}
}
