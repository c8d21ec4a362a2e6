package structs

import (
	"fmt"
	"strconv"
	"strings"
)

// VersionCheck is one comparison of a version constraint (">= 1.2").
type VersionCheck struct {
	Op      string
	Version []int
}

// ParseVersionConstraint parses comma-separated comparisons such as
// ">= 1.2.0, < 2".
func ParseVersionConstraint(s string) ([]VersionCheck, error) {
	var out []VersionCheck
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("invalid version constraint %q: empty comparison", s)
		}
		op := "="
		for _, candidate := range []string{">=", "<=", "!=", "~>", ">", "<", "="} {
			if strings.HasPrefix(part, candidate) {
				op = candidate
				part = strings.TrimSpace(part[len(candidate):])
				break
			}
		}
		v, err := ParseVersion(part)
		if err != nil {
			return nil, fmt.Errorf("invalid version constraint %q: %v", s, err)
		}
		out = append(out, VersionCheck{Op: op, Version: v})
	}
	return out, nil
}

// ParseVersion parses "1.2.3" (a leading v and a -suffix are ignored).
func ParseVersion(s string) ([]int, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return nil, fmt.Errorf("empty version")
	}
	parts := strings.Split(s, ".")
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a version like 1.2.3", s)
		}
		out[i] = n
	}
	return out, nil
}

// CompareVersions returns -1, 0 or 1; missing parts count as 0.
func CompareVersions(a, b []int) int {
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}
