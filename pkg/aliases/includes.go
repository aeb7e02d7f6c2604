package aliases

import (
	"sort"
	"strings"
)

// Includes lists the files that the table's :include: entries name, and
// those that they name in turn (as deep as Expand would go): the files a
// delivery may read besides the aliases file, which qrun's sandbox must
// be told of before it starts. An include that cannot be read is listed
// all the same (Expand reports it).
func (t *Table) Includes() []string {
	seen := map[string]bool{}
	var walk func(vals []string, depth int)
	walk = func(vals []string, depth int) {
		if depth > maxDepth {
			return
		}
		for _, v := range vals {
			if !strings.HasPrefix(strings.ToLower(v), ":include:") {
				continue
			}
			path := strings.TrimSpace(v[len(":include:"):])
			if seen[path] {
				continue
			}
			seen[path] = true
			if more, err := readInclude(path); err == nil {
				walk(more, depth+1)
			}
		}
	}
	for _, vals := range t.m {
		walk(vals, 0)
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
