package spool_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtp-bs/pkg/spool"
)

// A state log is read to its end however long it grows: records past
// 4 MiB were once ignored, so a recipient delivered after that was tried
// again on every pass and its message never left the queue (found by a
// red-team run). A line no record could fill is skipped as damaged.
func TestReadStatePastFourMiB(t *testing.T) {
	sp, env := enqueued(t)
	reply := "450-4.2.0 " + strings.Repeat("x", 990)
	t0 := time.Unix(1_800_000_000, 0)
	var recs []spool.Record
	for i := 0; i < 5000; i++ { // about 5 MB
		recs = append(recs, spool.Record{Time: t0, Kind: "deferred", Rcpt: 0, Detail: reply})
	}
	if err := sp.Append(env.ID, recs...); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(sp.Dir, "state", env.ID)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(strings.Repeat("y", 10000) + "\n") // no record is this long
	f.Close()
	if err := sp.Append(env.ID, spool.Record{Time: t0.Add(time.Hour), Kind: "sent", Rcpt: 0, Detail: "250 ok"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Size() < 5_000_000 {
		t.Fatalf("state log: %v, %v", fi, err)
	}
	st, err := sp.ReadState(env)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Rcpts[0]; r.Status != spool.Sent || r.Attempts != 5001 || r.Reply != "250 ok" || !st.Done() {
		t.Errorf("recipient after a 5 MB log: %+v", r)
	}
	if st.Damaged != 1 {
		t.Errorf("Damaged = %d, want 1 (the overlong line)", st.Damaged)
	}
}
