package collector

import (
	"reflect"
	"testing"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/internal/config"
	"github.com/flowscope/flowscope/store"
)

// TestDefaultsAgree checks that the default configuration gives the store
// exactly its own defaults: a default restated (and drifted) in
// internal/config, or a setting mapped onto the wrong option, fails here.
func TestDefaultsAgree(t *testing.T) {
	got := storeOptions(config.Default())
	want := store.DefaultOptions()
	// The fields the configuration does not set (clock, logger, intervals
	// and the aggregation fields without a setting) take the store's
	// defaults either way.
	want.Logger, want.Now = nil, nil
	want.CheckpointInterval, want.CheckpointSpans, want.RetentionInterval = 0, 0, 0
	want.CheckpointBytes, want.MappedResidentLimit = 0, 0
	want.RollupFlushInterval, want.AggregationWait = 0, 0
	ad := aggregate.DefaultOptions()
	want.Aggregation = aggregate.Options{
		PairWait: ad.PairWait, SignificantDigits: ad.SignificantDigits, MaxValue: ad.MaxValue, MaxPending: ad.MaxPending,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("store options from the default configuration\n got %+v\nwant %+v", got, want)
	}
	// The default configuration's correlation keys are a copy.
	cfg := config.Default()
	cfg.Correlation.Keys[0] = "changed"
	if store.DefaultCorrelationKeys()[0] == "changed" {
		t.Error("changing the configuration's keys changed the store's defaults")
	}
}
