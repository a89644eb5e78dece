package synthetics

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/flowscope/flowscope/store"
)

// maskText replaces secret values in everything a run stores or logs.
const maskText = "****"

// masker hides the values a run read from ${env:NAME} variables. The zero
// masker hides nothing.
type masker struct {
	r *strings.Replacer
}

// newMasker returns a masker of secrets: each non-empty value as it is and
// as it appears escaped in a URL's query or path.
func newMasker(secrets []string) masker {
	var forms []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		forms = append(forms, s, url.QueryEscape(s), url.PathEscape(s))
	}
	if len(forms) == 0 {
		return masker{}
	}
	// The longest first: a Replacer tries its old strings in argument
	// order at each position, so a secret holding another is hidden whole.
	slices.SortFunc(forms, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	forms = slices.Compact(forms)
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, maskText)
	}
	return masker{r: strings.NewReplacer(pairs...)}
}

// clean returns s with secrets masked and invalid UTF-8 replaced, as the
// store requires.
func (m masker) clean(s string) string {
	if m.r != nil {
		s = m.r.Replace(s)
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// cleanRun cleans every text field of run in place.
func (m masker) cleanRun(run *store.SyntheticRun) {
	run.Error = m.clean(run.Error)
	for i := range run.Steps {
		s := &run.Steps[i]
		s.Name, s.Method, s.URL = m.clean(s.Name), m.clean(s.Method), m.clean(s.URL)
		s.Error, s.Body = m.clean(s.Error), m.clean(s.Body)
		for j := range s.Assertions {
			a := &s.Assertions[j]
			a.Target, a.Expected, a.Actual = m.clean(a.Target), m.clean(a.Expected), m.clean(a.Actual)
		}
	}
}

// clip returns s cut at a UTF-8 boundary to at most n bytes, of which the
// last are "…" when it was cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := max(n-len("…"), 0)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
