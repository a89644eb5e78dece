package security

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	ingestTok = "ingest-0123456789abcdef"
	readTok   = "read-0123456789abcdef"
	writeTok  = "write-0123456789abcdef"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadTokens(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, content)
		return p
	}
	good := file("good", "\n  "+readTok+"\r\n")
	tests := []struct {
		name    string
		src     TokenSources
		wantErr []string // substrings of the error; nil: no error
		secret  string   // must not appear in the error
	}{
		{name: "none", src: TokenSources{}},
		{name: "file trimmed", src: TokenSources{Read: TokenSource{File: good}}},
		{name: "value", src: TokenSources{Write: TokenSource{Value: " " + writeTok + "\n"}}},
		{name: "missing file", src: TokenSources{Ingest: TokenSource{File: filepath.Join(dir, "nope")}},
			wantErr: []string{"ingest token", filepath.Join(dir, "nope")}},
		{name: "empty file", src: TokenSources{Read: TokenSource{File: file("empty", " \n\n")}},
			wantErr: []string{"read token", filepath.Join(dir, "empty"), "empty"}},
		{name: "short file", src: TokenSources{Write: TokenSource{File: file("short", "abc123\n")}},
			wantErr: []string{"write token", filepath.Join(dir, "short"), "shorter than 16"}, secret: "abc123"},
		{name: "short value", src: TokenSources{Ingest: TokenSource{Value: "tiny-secret"}},
			wantErr: []string{"ingest token", "value", "shorter than 16"}, secret: "tiny-secret"},
		{name: "both", src: TokenSources{Read: TokenSource{File: good, Value: readTok}},
			wantErr: []string{"read token", good, "both"}, secret: readTok},
		{name: "whitespace inside", src: TokenSources{Write: TokenSource{File: file("space", "0123456789 abcdefghij\n")}},
			wantErr: []string{"write token", filepath.Join(dir, "space"), "whitespace"}, secret: "0123456789 abcdefghij"},
		{name: "newline inside", src: TokenSources{Write: TokenSource{Value: "0123456789\nabcdefghij"}},
			wantErr: []string{"write token", "whitespace"}, secret: "abcdefghij"},
		{name: "too long", src: TokenSources{Read: TokenSource{Value: strings.Repeat("x", maxTokenLen+1)}},
			wantErr: []string{"read token", "longer than"}, secret: "xxxxxxxxxxxxxxxx"},
		{name: "second scope fails", src: TokenSources{Ingest: TokenSource{Value: ingestTok}, Write: TokenSource{Value: "short"}},
			wantErr: []string{"write token"}, secret: ingestTok},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := LoadTokens(tt.src)
			if tt.wantErr == nil {
				if err != nil || tok == nil {
					t.Fatalf("LoadTokens: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("LoadTokens: no error")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

func TestTokensAllows(t *testing.T) {
	all, err := LoadTokens(TokenSources{
		Ingest: TokenSource{Value: ingestTok}, Read: TokenSource{Value: readTok}, Write: TokenSource{Value: writeTok},
	})
	if err != nil {
		t.Fatal(err)
	}
	writeOnly, err := LoadTokens(TokenSources{Write: TokenSource{Value: writeTok}})
	if err != nil {
		t.Fatal(err)
	}
	readOnly, err := LoadTokens(TokenSources{Read: TokenSource{Value: readTok}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		tokens    *Tokens
		scope     Scope
		presented string
		want      bool
	}{
		{"none needs nothing", all, ScopeNone, "", true},
		{"none with junk", all, ScopeNone, "junk", true},
		{"ingest/ingest", all, ScopeIngest, ingestTok, true},
		{"ingest/read", all, ScopeIngest, readTok, false},
		{"ingest/write", all, ScopeIngest, writeTok, false},
		{"ingest/empty", all, ScopeIngest, "", false},
		{"read/ingest", all, ScopeRead, ingestTok, false},
		{"read/read", all, ScopeRead, readTok, true},
		{"read/write", all, ScopeRead, writeTok, true},
		{"read/empty", all, ScopeRead, "", false},
		{"write/ingest", all, ScopeWrite, ingestTok, false},
		{"write/read", all, ScopeWrite, readTok, false},
		{"write/write", all, ScopeWrite, writeTok, true},
		{"write/wrong", all, ScopeWrite, writeTok + "x", false},
		{"write/prefix", all, ScopeWrite, writeTok[:len(writeTok)-1], false},
		{"write/empty", all, ScopeWrite, "", false},
		{"write/huge", all, ScopeWrite, strings.Repeat("w", maxTokenLen+1), false},
		{"unknown scope", all, Scope(7), writeTok, false},
		{"write-only: ingest open", writeOnly, ScopeIngest, "", true},
		{"write-only: read open", writeOnly, ScopeRead, "", true},
		{"write-only: write", writeOnly, ScopeWrite, writeTok, true},
		{"write-only: write wrong", writeOnly, ScopeWrite, readTok, false},
		{"read-only: read", readOnly, ScopeRead, readTok, true},
		{"read-only: read empty", readOnly, ScopeRead, "", false},
		{"read-only: writes need the read token", readOnly, ScopeWrite, readTok, true},
		{"read-only: writes closed", readOnly, ScopeWrite, "", false},
		{"read-only: writes with a wrong token", readOnly, ScopeWrite, writeTok, false},
		{"read-only: ingest open", readOnly, ScopeIngest, "", true},
		{"nil tokens", nil, ScopeWrite, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tokens.Allows(tt.scope, tt.presented); got != tt.want {
				t.Errorf("Allows(%v, …) = %v, want %v", tt.scope, got, tt.want)
			}
		})
	}

	if i, r, w := all.Configured(); !i || !r || !w {
		t.Errorf("Configured() = %v, %v, %v for all three", i, r, w)
	}
	if i, r, w := writeOnly.Configured(); i || r || !w {
		t.Errorf("Configured() = %v, %v, %v for write only", i, r, w)
	}
	var none *Tokens
	if i, r, w := none.Configured(); i || r || w || none.Required(ScopeWrite) || none.Reload() != nil {
		t.Error("a nil *Tokens configures something")
	}
	if all.Required(ScopeNone) {
		t.Error("Required(ScopeNone)")
	}
}

func TestTokensReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "write")
	writeFile(t, path, writeTok+"\n")
	tok, err := LoadTokens(TokenSources{Write: TokenSource{File: path}, Read: TokenSource{Value: readTok}})
	if err != nil {
		t.Fatal(err)
	}
	const rotated = "rotated-0123456789abcdef"
	writeFile(t, path, rotated)
	if !tok.Allows(ScopeWrite, writeTok) {
		t.Fatal("the old token stopped working before Reload")
	}
	if err := tok.Reload(); err != nil {
		t.Fatal(err)
	}
	if tok.Allows(ScopeWrite, writeTok) || !tok.Allows(ScopeWrite, rotated) || !tok.Allows(ScopeRead, readTok) {
		t.Fatal("Reload did not switch to the rotated token, or lost the value token")
	}

	writeFile(t, path, "short")
	if err := tok.Reload(); err == nil || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "short\"") {
		t.Fatalf("Reload of a short token: %v", err)
	}
	if !tok.Allows(ScopeWrite, rotated) || !tok.Allows(ScopeRead, readTok) {
		t.Fatal("a failed Reload dropped the previous tokens")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := tok.Reload(); err == nil || !tok.Allows(ScopeWrite, rotated) {
		t.Fatalf("Reload of a removed file: %v; or the token was dropped", err)
	}
}

func TestScopeString(t *testing.T) {
	for s, want := range map[Scope]string{ScopeNone: "none", ScopeIngest: "ingest", ScopeRead: "read", ScopeWrite: "write", Scope(9): "Scope(9)"} {
		if got := s.String(); got != want {
			t.Errorf("Scope(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"Bearer abc", "abc"},
		{"bearer abc", "abc"},
		{"BEARER abc", "abc"},
		{"Bearer   abc  ", "abc"},
		{"Bearer\tabc", "abc"},
		{"  Bearer abc", "abc"},
		{"Bearer", ""},
		{"Bearer ", ""},
		{"Bearerabc", ""},
		{"Bearer a b", ""},
		{"Basic dXNlcjpwYXNz", ""},
		{"Token abc", ""},
		{"abc", ""},
		{"Bearer abc=", "abc="},
		{"Bearer a\nb", ""},
	}
	for _, tt := range tests {
		if got := BearerToken(tt.in); got != tt.want {
			t.Errorf("BearerToken(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzBearerToken checks that BearerToken returns "" or a token without
// whitespace taken from its input, which it returns again from a canonical
// header. Run it with
//
//	go test -run '^$' -fuzz FuzzBearerToken -fuzztime 20s ./internal/security
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"", "Bearer abc", "bearer  x\t", "Basic abc", "Bearer a b", "Bearer\x00x", "Bearer é", "BEARER\tk"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tok := BearerToken(in)
		if tok == "" {
			return
		}
		if strings.ContainsFunc(tok, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }) {
			t.Fatalf("BearerToken(%q) = %q contains whitespace", in, tok)
		}
		if !strings.HasSuffix(strings.TrimRight(in, " \t"), tok) {
			t.Fatalf("BearerToken(%q) = %q is not the end of the input", in, tok)
		}
		if again := BearerToken("Bearer " + tok); again != tok {
			t.Fatalf("BearerToken(%q) = %q, but BearerToken(\"Bearer \"+that) = %q", in, tok, again)
		}
	})
}
