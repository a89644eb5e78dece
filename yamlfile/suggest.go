package yamlfile

import (
	"fmt"
	"strings"
)

// Nearest returns the one of valid closest to k, ignoring case, within an
// edit distance of 2; "" when none is.
func Nearest(k string, valid []string) string {
	lk := strings.ToLower(k)
	best, bd := "", 3
	for _, v := range valid {
		if d := EditDistance(lk, strings.ToLower(v)); d < bd {
			best, bd = v, d
		}
	}
	return best
}

// SameWord returns the first of valid whose first word (the text before
// "_") is k's, ignoring case, when that word has at least 3 letters:
// "status" for status_code, "body_contains" for body_matches; "" when
// none is.
func SameWord(k string, valid []string) string {
	word, _, _ := strings.Cut(strings.ToLower(k), "_")
	if len(word) < 3 {
		return ""
	}
	for _, v := range valid {
		if w, _, _ := strings.Cut(strings.ToLower(v), "_"); w == word {
			return v
		}
	}
	return ""
}

// DidYouMean returns `: did you mean "near"?`, or "" when near is "".
func DidYouMean(near string) string {
	if near == "" {
		return ""
	}
	return fmt.Sprintf(": did you mean %q?", near)
}

// EditDistance is the Levenshtein distance of short strings, in bytes
// (large when either is longer than 64 bytes).
func EditDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
