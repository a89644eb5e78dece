package aggregate

import (
	"errors"
	"fmt"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Defaults of Options.
const (
	DefaultWindowWidth       = 10 * time.Second
	DefaultPairWait          = 10 * time.Second
	DefaultSignificantDigits = 2
	DefaultMaxValue          = time.Hour
	DefaultMaxExemplars      = 5
	DefaultMaxPending        = 1_000_000
)

// Errors. Validation and decoding errors wrap one of these.
var (
	// ErrInvalidOptions is wrapped by every error of Options.Validate.
	ErrInvalidOptions = errors.New("invalid aggregation options")
	// ErrCorrupt is wrapped by every error of DecodeWindow, DecodeGraph and
	// DecodeLatency.
	ErrCorrupt = errors.New("corrupt rollup window")
	// ErrUnknownLevel is returned by ParseLevel.
	ErrUnknownLevel = errors.New("unknown flow graph level")
)

// Options configure an Aggregator. The zero value of a field means its
// default (DefaultOptions).
type Options struct {
	// WindowWidth is the width of the rollup windows: whole seconds that
	// divide one minute (1s, 2s, 5s, 10s, 30s, 1m…). Default 10s.
	WindowWidth time.Duration
	// PairWait is how long a half of a call (a client span without its
	// server span, or the reverse) and a remembered parent span wait for
	// their counterpart, measured between commit times. Default 10s.
	PairWait time.Duration
	// SignificantDigits is the HDR histogram precision, 1 to 5. Two digits
	// keep every quantile within 1% (1/128) of the exact value. Default 2.
	SignificantDigits int
	// MaxValue is the largest trackable duration; the trackable range is
	// 1 ns to MaxValue. Longer spans are recorded as MaxValue and counted in
	// Rollup.Clamped. Default 1h; at least 1µs.
	MaxValue time.Duration
	// MaxExemplars is how many of the slowest spans a rollup keeps, 1 to
	// 255. Default 5.
	MaxExemplars int
	// MaxPending bounds the pairing queue (held client spans and waiting
	// server spans) and sizes the table of remembered parents. Beyond it the
	// oldest commit batch is evicted (Stats.Evicted). Default 1,000,000
	// (about 200 MB, see the package documentation).
	MaxPending int
	// ParentSlots, when positive, sets the size of the table of
	// remembered parents (rounded up to a power of two) instead of sizing
	// it from MaxPending. A small table makes parents overwrite each other
	// as a load above capacity does; tests use it to show that replay
	// stays exact then. Zero: from MaxPending.
	ParentSlots int
}

// DefaultOptions returns the default options.
func DefaultOptions() Options {
	return Options{
		WindowWidth:       DefaultWindowWidth,
		PairWait:          DefaultPairWait,
		SignificantDigits: DefaultSignificantDigits,
		MaxValue:          DefaultMaxValue,
		MaxExemplars:      DefaultMaxExemplars,
		MaxPending:        DefaultMaxPending,
	}
}

// Validate reports the first invalid field. Zero fields are valid (they
// mean the default).
func (o Options) Validate() error {
	switch {
	case o.WindowWidth < 0 || o.WindowWidth%time.Second != 0 || (o.WindowWidth > 0 && time.Minute%o.WindowWidth != 0):
		return fmt.Errorf("%w: window width %v must be whole seconds dividing one minute", ErrInvalidOptions, o.WindowWidth)
	case o.PairWait < 0:
		return fmt.Errorf("%w: pair wait %v is negative", ErrInvalidOptions, o.PairWait)
	case o.SignificantDigits < 0 || o.SignificantDigits > 5:
		return fmt.Errorf("%w: significant digits %d must be 1 to 5", ErrInvalidOptions, o.SignificantDigits)
	case o.MaxValue != 0 && o.MaxValue < time.Microsecond:
		return fmt.Errorf("%w: max value %v must be at least 1µs", ErrInvalidOptions, o.MaxValue)
	case o.MaxExemplars < 0 || o.MaxExemplars > 255:
		return fmt.Errorf("%w: max exemplars %d must be 1 to 255", ErrInvalidOptions, o.MaxExemplars)
	case o.MaxPending < 0:
		return fmt.Errorf("%w: max pending %d is negative", ErrInvalidOptions, o.MaxPending)
	case o.ParentSlots < 0:
		return fmt.Errorf("%w: parent slots %d is negative", ErrInvalidOptions, o.ParentSlots)
	}
	return nil
}

// normalized replaces zero and invalid fields by their defaults.
func (o Options) normalized() Options {
	d := DefaultOptions()
	if o.WindowWidth <= 0 || o.WindowWidth%time.Second != 0 || time.Minute%o.WindowWidth != 0 {
		o.WindowWidth = d.WindowWidth
	}
	if o.PairWait <= 0 {
		o.PairWait = d.PairWait
	}
	if o.SignificantDigits < 1 || o.SignificantDigits > 5 {
		o.SignificantDigits = d.SignificantDigits
	}
	if o.MaxValue < time.Microsecond {
		o.MaxValue = d.MaxValue
	}
	if o.MaxExemplars < 1 || o.MaxExemplars > 255 {
		o.MaxExemplars = d.MaxExemplars
	}
	if o.MaxPending <= 0 {
		o.MaxPending = d.MaxPending
	}
	o.ParentSlots = max(o.ParentSlots, 0)
	return o
}

// Geometry is what decoding and merging rollups need to know: the HDR
// histogram geometry and the exemplar cap. Every rollup of one store must
// use the same geometry for merges and round trips to be exact.
type Geometry struct {
	Digits   int   // significant value digits, 1 to 5
	MaxValue int64 // highest trackable value, ns
	// MaxExemplars is the exemplar cap of the rollups it makes; 0 means
	// DefaultMaxExemplars.
	MaxExemplars int
}

// Geometry returns the rollup geometry of o (zero fields as defaults).
func (o Options) Geometry() Geometry {
	o = o.normalized()
	return Geometry{Digits: o.SignificantDigits, MaxValue: int64(o.MaxValue), MaxExemplars: o.MaxExemplars}
}

// DefaultGeometry returns DefaultOptions().Geometry().
func DefaultGeometry() Geometry { return DefaultOptions().Geometry() }

// normalized replaces invalid fields by the defaults, so that a zero
// Geometry works.
func (g Geometry) normalized() Geometry {
	if g.Digits < 1 || g.Digits > 5 {
		g.Digits = DefaultSignificantDigits
	}
	if g.MaxValue < 2 {
		g.MaxValue = int64(DefaultMaxValue)
	}
	if g.MaxExemplars < 1 || g.MaxExemplars > 255 {
		g.MaxExemplars = DefaultMaxExemplars
	}
	return g
}

// NewRollup returns an empty rollup of geometry g (invalid fields of g are
// taken as defaults).
func (g Geometry) NewRollup() *Rollup {
	g = g.normalized()
	return &Rollup{Hist: hdr.NewPacked(1, g.MaxValue, g.Digits), maxExemplars: int32(g.MaxExemplars)}
}
