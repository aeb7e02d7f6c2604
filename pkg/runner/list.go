package runner

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"smtp-bs/pkg/spool"
)

// Item is one queued message as -list shows it.
type Item struct {
	ID      string    `json:"id"`
	Arrived time.Time `json:"arrived"`
	AgeSec  int64     `json:"age_seconds"`
	Size    int64     `json:"size"`
	From    string    `json:"from"`
	NextTry time.Time `json:"next_try"`
	Held    bool      `json:"held"`
	// Delivering: a qrun has the message open for delivery right now.
	Delivering bool       `json:"delivering"`
	Rcpts      []RcptItem `json:"recipients"`
	Damaged    string     `json:"damaged,omitempty"`
}

// RcptItem is one recipient's state.
type RcptItem struct {
	Addr      string    `json:"address"`
	State     string    `json:"state"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_reply,omitempty"`
	LastTry   time.Time `json:"last_attempt,omitzero"` // left out when never tried
}

// List reads the whole queue. It takes no lock and changes nothing, so it
// works while a qrun is delivering; a message finished meanwhile is left out.
func List(sp *spool.Spool) ([]Item, error) {
	entries, err := sp.Scan(nil)
	if err != nil {
		return nil, err
	}
	now := sp.Now()
	items := make([]Item, 0, len(entries))
	for _, e := range entries {
		it := Item{ID: e.ID, NextTry: e.NextTry, Held: e.Held, Delivering: !e.Held && sp.Delivering(e.ID)}
		env, err := sp.ReadEnvelope(e.ID)
		if err != nil {
			it.Damaged = err.Error()
			items = append(items, it)
			continue
		}
		it.Arrived, it.Size, it.From = env.Received, env.Size, env.From
		it.AgeSec = int64(now.Sub(env.Received).Seconds())
		st, err := sp.ReadState(env)
		if err != nil {
			it.Damaged = err.Error()
			items = append(items, it)
			continue
		}
		for _, rc := range st.Rcpts {
			it.Rcpts = append(it.Rcpts, RcptItem{Addr: rc.Addr, State: string(rc.Status), Attempts: rc.Attempts, LastError: rc.Reply, LastTry: rc.Time})
		}
		items = append(items, it)
	}
	return items, nil
}

// WriteJSON prints items as one JSON array.
func WriteJSON(w io.Writer, items []Item) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(items)
}

// WriteText prints items for a person, in the spirit of mailq.
func WriteText(w io.Writer, items []Item, now time.Time) {
	if len(items) == 0 {
		fmt.Fprintln(w, "Mail queue is empty")
		return
	}
	for _, it := range items {
		if it.Damaged != "" {
			fmt.Fprintf(w, "%s  DAMAGED: %s\n\n", it.ID, it.Damaged)
			continue
		}
		flag := ""
		if it.Held {
			flag = "  (held)"
		} else if it.Delivering {
			flag = "  (delivering)"
		} else if it.NextTry.After(now) {
			flag = "  next try in " + age(it.NextTry.Sub(now))
		}
		from := it.From
		if from == "" {
			from = "MAILER-DAEMON"
		}
		fmt.Fprintf(w, "%s  %8d bytes  age %s  from <%s>%s\n", it.ID, it.Size, age(time.Duration(it.AgeSec)*time.Second), from, flag)
		for _, r := range it.Rcpts {
			line := fmt.Sprintf("    <%s>  %s", r.Addr, r.State)
			if r.Attempts > 0 {
				line += fmt.Sprintf(" (%d attempts)", r.Attempts)
			}
			if r.LastError != "" && r.State != "sent" {
				line += ": " + r.LastError
			}
			fmt.Fprintln(w, line)
		}
		fmt.Fprintln(w)
	}
	if len(items) == 1 {
		fmt.Fprintln(w, "-- 1 message")
	} else {
		fmt.Fprintf(w, "-- %d messages\n", len(items))
	}
}

func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
