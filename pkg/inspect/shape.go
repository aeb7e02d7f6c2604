package inspect

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"smtp-bs/pkg/runner"
)

// Buckets are qshape's default age buckets, in minutes: a recipient goes
// into the first bucket its message's age does not exceed; the last
// column holds the older ones.
var Buckets = []int{5, 10, 20, 40, 80, 160, 320, 640, 1280}

// Shape writes the recipients still to deliver (pending or deferred, of
// messages not on hold) by domain and by their message's age, like
// Postfix's qshape: a TOTAL line, then the domains with most recipients
// first.
func Shape(w io.Writer, items []runner.Item, now time.Time) {
	type row struct {
		domain string
		total  int
		cells  []int
	}
	rows := map[string]*row{}
	total := &row{domain: "TOTAL", cells: make([]int, len(Buckets)+1)}
	held := 0
	for _, it := range items {
		if it.Damaged != "" {
			continue
		}
		if it.Held {
			held++
			continue
		}
		age := now.Sub(it.Arrived)
		b := len(Buckets)
		for i, m := range Buckets {
			if age <= time.Duration(m)*time.Minute {
				b = i
				break
			}
		}
		for _, rc := range it.Rcpts {
			if rc.State != "pending" && rc.State != "deferred" {
				continue
			}
			d := strings.ToLower(rc.Addr[strings.LastIndexByte(rc.Addr, '@')+1:])
			r := rows[d]
			if r == nil {
				r = &row{domain: d, cells: make([]int, len(Buckets)+1)}
				rows[d] = r
			}
			r.total++
			r.cells[b]++
			total.total++
			total.cells[b]++
		}
	}
	list := make([]*row, 0, len(rows))
	for _, r := range rows {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].total != list[j].total {
			return list[i].total > list[j].total
		}
		return list[i].domain < list[j].domain
	})
	width := len("TOTAL")
	for _, r := range list {
		width = max(width, len(r.domain))
	}
	fmt.Fprintf(w, "%*s %6s", width, "domain", "T")
	for _, m := range Buckets {
		fmt.Fprintf(w, " %5d", m)
	}
	fmt.Fprintf(w, " %5s\n", fmt.Sprintf("%d+", Buckets[len(Buckets)-1]))
	for _, r := range append([]*row{total}, list...) {
		fmt.Fprintf(w, "%*s %6d", width, r.domain, r.total)
		for _, c := range r.cells {
			fmt.Fprintf(w, " %5d", c)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "(recipients still to deliver, by their message's age in minutes; %s on hold not counted)\n", Plural(held, "message"))
}
