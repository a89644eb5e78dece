package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// lampArch is a small declared architecture in the shape of spigo's lamp.
func lampArch() Architecture {
	node := func(id, svc, zone string) ArchNode {
		return ArchNode{ID: "lamp.us-east-1." + zone + "." + id, Service: svc, Instance: id,
			Zone: zone, Region: "us-east-1", Namespace: "lamp"}
	}
	a := Architecture{
		Name:     "lamp",
		Source:   "spigo graph json lamp.json",
		Imported: time.Date(2026, 11, 2, 9, 30, 0, 123, time.UTC),
		Nodes: []ArchNode{
			node("webserver00", "webserver", "zoneA"),
			node("webserver01", "webserver", "zoneB"),
			node("rds-mysql00", "rds-mysql", "zoneA"),
			node("memcache00", "memcache", "zoneA"),
			{ID: "été", Service: "", Instance: "é"}, // no service, odd bytes
		},
	}
	a.Edges = []ArchEdge{
		{a.Nodes[0].ID, a.Nodes[2].ID},
		{a.Nodes[1].ID, a.Nodes[2].ID},
		{a.Nodes[0].ID, a.Nodes[3].ID},
		{a.Nodes[0].ID, a.Nodes[0].ID}, // self call
		{a.Nodes[0].ID, a.Nodes[2].ID}, // duplicate, kept
	}
	return a
}

func TestArchRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openTest(t, dir, nil)
	want := lampArch()
	if err := db.PutArchitecture(ctx, want); err != nil {
		t.Fatal(err)
	}
	check := func(phase string, db *DB) {
		t.Helper()
		got, err := db.Architecture(ctx, "lamp")
		if err != nil {
			t.Fatalf("%s: %v", phase, err)
		}
		if !got.Imported.Equal(want.Imported) {
			t.Errorf("%s: imported %v, want %v", phase, got.Imported, want.Imported)
		}
		got.Imported = want.Imported
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got\n%+v\nwant\n%+v", phase, got, want)
		}
	}
	check("open", db)

	// Survives a reopen.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2 := openTest(t, dir, nil)
	check("reopen", db2)
	infos, err := db2.Architectures(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Name != "lamp" || infos[0].Nodes != 5 || infos[0].Edges != 5 ||
		infos[0].Source != want.Source || !infos[0].Imported.Equal(want.Imported) {
		t.Errorf("after reopen: %+v", infos)
	}
}

func TestArchEmptyAndDefaults(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	db := openTest(t, t.TempDir(), &now)

	// A fresh store has none.
	if infos, err := db.Architectures(ctx); err != nil || len(infos) != 0 {
		t.Fatalf("fresh store: %v %v", infos, err)
	}
	if _, err := db.Architecture(ctx, "lamp"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"lamp"`) {
		t.Errorf("Architecture(absent) = %v, want ErrNotFound naming it", err)
	}
	if _, err := db.Architecture(ctx, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("Architecture(\"\") = %v, want ErrNotFound", err)
	}

	// No nodes, no edges, no import time: the store's clock.
	if err := db.PutArchitecture(ctx, Architecture{Name: "empty"}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Architecture(ctx, "empty")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Imported.Equal(now) || len(got.Nodes) != 0 || len(got.Edges) != 0 || got.Source != "" {
		t.Errorf("empty architecture read back as %+v", got)
	}
}

func TestArchReplaceListDelete(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, t.TempDir(), nil)
	a := lampArch()
	for _, name := range []string{"lamp", "storage", "aardvark"} {
		a.Name = name
		if err := db.PutArchitecture(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	// Replace storage with a smaller one.
	small := Architecture{Name: "storage", Source: "v2", Imported: a.Imported.Add(time.Hour),
		Nodes: []ArchNode{{ID: "a", Service: "a"}, {ID: "b", Service: "b"}},
		Edges: []ArchEdge{{"a", "b"}}}
	if err := db.PutArchitecture(ctx, small); err != nil {
		t.Fatal(err)
	}
	got, err := db.Architecture(ctx, "storage")
	if err != nil {
		t.Fatal(err)
	}
	got.Imported = small.Imported
	if !reflect.DeepEqual(got, small) {
		t.Errorf("replaced: %+v, want %+v", got, small)
	}

	infos, err := db.Architectures(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range infos {
		names = append(names, in.Name)
	}
	if want := []string{"aardvark", "lamp", "storage"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("names %v, want %v", names, want)
	}
	if s := infos[2]; s.Source != "v2" || s.Nodes != 2 || s.Edges != 1 || !s.Imported.Equal(small.Imported) {
		t.Errorf("storage info %+v", s)
	}

	if err := db.DeleteArchitecture(ctx, "lamp"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Architecture(ctx, "lamp"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if err := db.DeleteArchitecture(ctx, "lamp"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete = %v, want ErrNotFound", err)
	}
	if infos, _ := db.Architectures(ctx); len(infos) != 2 {
		t.Errorf("after delete: %+v", infos)
	}
}

func TestArchValidation(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, t.TempDir(), nil)
	for _, tt := range []struct {
		name   string
		modify func(a *Architecture)
		want   string // in the message
	}{
		{"empty name", func(a *Architecture) { a.Name = "" }, "empty name"},
		{"long name", func(a *Architecture) { a.Name = strings.Repeat("x", 201) }, "name of 201 bytes, at most 200"},
		{"bad utf-8 name", func(a *Architecture) { a.Name = "a\xff" }, "not valid UTF-8"},
		{"bad utf-8 node", func(a *Architecture) { a.Nodes[1].Zone = "\xc3" }, "node 1"},
		{"empty node ID", func(a *Architecture) { a.Nodes[2].ID = "" }, "node 2 has an empty ID"},
		{"duplicate node", func(a *Architecture) { a.Nodes[3].ID = a.Nodes[0].ID }, `node ID "lamp.us-east-1.zoneA.webserver00" declared twice`},
		{"unknown source", func(a *Architecture) { a.Edges[1].Source = "ghost" }, `edge 1 ("ghost" -> "lamp.us-east-1.zoneA.rds-mysql00"): source "ghost" is not a declared node`},
		{"unknown target", func(a *Architecture) { a.Edges[4].Target = "" }, `target "" is not a declared node`},
		{"imported out of range", func(a *Architecture) { a.Imported = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }, "imported time"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := lampArch()
			tt.modify(&a)
			err := db.PutArchitecture(ctx, a)
			if !errors.Is(err, ErrInvalidArchitecture) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("PutArchitecture = %v, want ErrInvalidArchitecture containing %q", err, tt.want)
			}
		})
	}
	a := lampArch()
	a.Name = strings.Repeat("x", 200)
	if err := db.PutArchitecture(ctx, a); err != nil {
		t.Errorf("200-byte name: %v", err)
	}
	// Nothing invalid was stored.
	if infos, _ := db.Architectures(ctx); len(infos) != 1 {
		t.Errorf("stored %+v", infos)
	}
}

func TestArchDecodeCorrupt(t *testing.T) {
	a := lampArch()
	v := encodeArchitecture(&a)
	if _, err := decodeArchitecture("lamp", v); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(v); i++ {
		if _, err := decodeArchitecture("lamp", v[:i]); err == nil {
			t.Errorf("truncated to %d bytes: no error", i)
		}
	}
	if _, err := decodeArchitecture("lamp", append(v, 0)); err == nil {
		t.Error("trailing byte: no error")
	}
	bad := append([]byte{}, v...)
	bad[len(bad)-1] = 99 // target index out of range
	if _, err := decodeArchitecture("lamp", bad); err == nil {
		t.Error("bad node index: no error")
	}
}

func TestArchClosed(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	db.Close()
	ctx := context.Background()
	if err := db.PutArchitecture(ctx, lampArch()); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after close: %v", err)
	}
	if _, err := db.Architectures(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("list after close: %v", err)
	}
}
