package policies

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Glob syntax (over node names, DESIGN.md "Architecture rules"):
//
//	*       any run of characters, "/" included (namespaced IDs are ns/name)
//	?       one character
//	[abc]   one of the characters; [a-z] a range; [!a-z] or [^a-z] none of them
//	\c      the character c itself (\*, \?, \[, \\ …)
//
// A glob matches a whole name, character by character (UTF-8). Unlike
// path.Match, "*" and "?" also match "/".

// globKind picks the fastest way to match a compiled glob.
type globKind uint8

const (
	globLiteral  globKind = iota // no metacharacters: equality
	globAny                      // "*" (or "**"…): everything
	globPrefix                   // lit*: strings.HasPrefix
	globSuffix                   // *lit: strings.HasSuffix
	globContains                 // *lit*: strings.Contains
	globGeneral                  // anything else: the token matcher
)

// glob is a compiled glob.
type glob struct {
	kind globKind
	lit  string  // the literal of the literal, prefix, suffix and contains kinds
	toks []token // the tokens (globGeneral)
}

// tokKind is the kind of a glob token.
type tokKind uint8

const (
	tokLit   tokKind = iota // one literal character
	tokOne                  // ?
	tokStar                 // *
	tokClass                // [...]
)

// token is one element of a glob.
type token struct {
	kind tokKind
	r    rune        // tokLit
	neg  bool        // tokClass: [!…]
	rs   []runeRange // tokClass
}

// runeRange is an inclusive range of a class; a single character is lo == hi.
type runeRange struct{ lo, hi rune }

// maxGlobLen bounds a glob, in bytes.
const maxGlobLen = 1024

// compileGlob compiles pattern; the error says what is wrong with it.
func compileGlob(pattern string) (glob, error) {
	switch {
	case pattern == "":
		return glob{}, fmt.Errorf("empty glob")
	case len(pattern) > maxGlobLen:
		return glob{}, fmt.Errorf("glob of %d bytes; at most %d", len(pattern), maxGlobLen)
	case !utf8.ValidString(pattern):
		return glob{}, fmt.Errorf("glob %q is not valid UTF-8", pattern)
	}
	var toks []token
	for i := 0; i < len(pattern); {
		r, n := utf8.DecodeRuneInString(pattern[i:])
		switch r {
		case '*':
			if len(toks) == 0 || toks[len(toks)-1].kind != tokStar {
				toks = append(toks, token{kind: tokStar})
			}
			i += n
		case '?':
			toks = append(toks, token{kind: tokOne})
			i += n
		case '\\':
			if i+n >= len(pattern) {
				return glob{}, fmt.Errorf("glob %q ends with an unfinished escape (\\); write \\\\ for a backslash", pattern)
			}
			e, en := utf8.DecodeRuneInString(pattern[i+n:])
			toks = append(toks, token{kind: tokLit, r: e})
			i += n + en
		case '[':
			t, w, err := compileClass(pattern, i)
			if err != nil {
				return glob{}, err
			}
			toks = append(toks, t)
			i += w
		default:
			toks = append(toks, token{kind: tokLit, r: r})
			i += n
		}
	}
	return classify(toks), nil
}

// compileClass compiles the class that begins at pattern[start] ("[") and
// returns it with its width in bytes.
func compileClass(pattern string, start int) (token, int, error) {
	t := token{kind: tokClass}
	i := start + 1
	if i < len(pattern) && (pattern[i] == '!' || pattern[i] == '^') {
		t.neg = true
		i++
	}
	// next reads one character of the class, an escape resolved.
	next := func() (rune, bool, error) {
		if i >= len(pattern) {
			return 0, false, fmt.Errorf("glob %q: unterminated character class (missing ])", pattern)
		}
		r, n := utf8.DecodeRuneInString(pattern[i:])
		if r == '\\' {
			if i+n >= len(pattern) {
				return 0, false, fmt.Errorf("glob %q: unterminated character class (missing ])", pattern)
			}
			e, en := utf8.DecodeRuneInString(pattern[i+n:])
			i += n + en
			return e, true, nil
		}
		i += n
		return r, false, nil
	}
	for {
		lo, esc, err := next()
		if err != nil {
			return token{}, 0, err
		}
		if lo == ']' && !esc {
			if len(t.rs) == 0 {
				return token{}, 0, fmt.Errorf("glob %q: empty character class []; write \\[ for a bracket", pattern)
			}
			return t, i - start, nil
		}
		hi := lo
		if i+1 < len(pattern) && pattern[i] == '-' && pattern[i+1] != ']' {
			i++
			if hi, _, err = next(); err != nil {
				return token{}, 0, err
			}
			if hi < lo {
				return token{}, 0, fmt.Errorf("glob %q: bad range %c-%c in a character class (%c comes after %c)", pattern, lo, hi, lo, hi)
			}
		}
		t.rs = append(t.rs, runeRange{lo, hi})
	}
}

// classify picks the matcher of toks.
func classify(toks []token) glob {
	stars, lits := 0, 0
	for _, t := range toks {
		switch t.kind {
		case tokStar:
			stars++
		case tokLit:
			lits++
		}
	}
	literal := func(ts []token) string {
		var b strings.Builder
		for _, t := range ts {
			b.WriteRune(t.r)
		}
		return b.String()
	}
	n := len(toks)
	switch {
	case stars+lits != n:
		// A ? or a class: the general matcher.
	case stars == 0:
		return glob{kind: globLiteral, lit: literal(toks)}
	case n == 1:
		return glob{kind: globAny}
	case stars == 1 && toks[n-1].kind == tokStar:
		return glob{kind: globPrefix, lit: literal(toks[:n-1])}
	case stars == 1 && toks[0].kind == tokStar:
		return glob{kind: globSuffix, lit: literal(toks[1:])}
	case stars == 2 && toks[0].kind == tokStar && toks[n-1].kind == tokStar:
		return glob{kind: globContains, lit: literal(toks[1 : n-1])}
	}
	return glob{kind: globGeneral, toks: toks}
}

// match reports whether the glob matches all of s.
func (g *glob) match(s string) bool {
	switch g.kind {
	case globLiteral:
		return s == g.lit
	case globAny:
		return true
	case globPrefix:
		return strings.HasPrefix(s, g.lit)
	case globSuffix:
		return strings.HasSuffix(s, g.lit)
	case globContains:
		return strings.Contains(s, g.lit)
	}
	return matchTokens(g.toks, s)
}

// matchTokens matches toks against all of s. A star remembers where to
// resume: on a mismatch the last star takes one more character. Since
// consecutive stars are one, this is O(len(toks) × len(s)) at worst.
func matchTokens(toks []token, s string) bool {
	ti, si := 0, 0
	starT, starS := -1, 0
	for si < len(s) || ti < len(toks) {
		if ti < len(toks) {
			t := &toks[ti]
			if t.kind == tokStar {
				starT, starS = ti, si
				ti++
				continue
			}
			if si < len(s) {
				r, n := utf8.DecodeRuneInString(s[si:])
				if t.matchRune(r) {
					ti++
					si += n
					continue
				}
			}
		}
		if starT < 0 || starS >= len(s) {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starS:])
		starS += n
		ti, si = starT+1, starS
	}
	return true
}

// matchRune reports whether the non-star token t matches r.
func (t *token) matchRune(r rune) bool {
	switch t.kind {
	case tokLit:
		return r == t.r
	case tokOne:
		return true
	case tokClass:
		in := false
		for _, rr := range t.rs {
			if r >= rr.lo && r <= rr.hi {
				in = true
				break
			}
		}
		return in != t.neg
	}
	return false
}

// globs is a compiled list of globs: a name matches when any glob does.
type globs []glob

// match reports whether any of the globs matches s.
func (gs globs) match(s string) bool {
	for i := range gs {
		if gs[i].match(s) {
			return true
		}
	}
	return false
}

// matchNode reports whether any of the globs matches a node: its ID, or
// its plain name (at the service and instance levels, the ID without
// "namespace/"; "" for none).
func (gs globs) matchNode(id, plain string) bool {
	for i := range gs {
		if gs[i].match(id) || (plain != "" && gs[i].match(plain)) {
			return true
		}
	}
	return false
}
