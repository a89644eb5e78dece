package yamlfile

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CheckName returns why s is not a valid name of something a file
// defines, "" when it is: a name is not empty, at most maxLen bytes of
// UTF-8 without control characters, and does not begin or end with white
// space.
func CheckName(s string, maxLen int) string {
	switch {
	case s == "":
		return "empty name"
	case len(s) > maxLen:
		return fmt.Sprintf("name is %d bytes long; at most %d", len(s), maxLen)
	case !utf8.ValidString(s):
		return "name is not valid UTF-8"
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Sprintf("name %q contains a control character", s)
	case strings.TrimSpace(s) != s:
		return fmt.Sprintf("name %q begins or ends with white space", s)
	}
	return ""
}
