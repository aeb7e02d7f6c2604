package runner

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/delivery"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/spool"
)

// TestDrainThousandToTenDestinations queues 1,000 messages for ten
// domains, each routed to its own sink, and drains them in one pass with
// bounded concurrency: everything arrives once, and no sink ever sees more
// sessions at once than max_per_destination.
func TestDrainThousandToTenDestinations(t *testing.T) {
	sp, err := spool.Create(t.TempDir(), spool.Ops{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Delivery.MaxConcurrency, cfg.Delivery.MaxPerDestination = 8, 2
	routes := map[string]string{}
	var sinks []*testenv.Sink
	for i := 0; i < 10; i++ {
		s := testenv.NewSink(t)
		sinks = append(sinks, s)
		routes[fmt.Sprintf("d%d.example", i)] = "[" + strings.Replace(s.Addr, ":", "]:", 1)
	}
	tr := delivery.New(delivery.Options{Hostname: "mx.example", Routes: routes, SmarthostTLS: "none"})
	for i := 0; i < 1000; i++ {
		m, _ := sp.New()
		fmt.Fprintf(m, "Subject: m%04d\r\n\r\n%s\r\n", i, strings.Repeat("x", 2000))
		env := &spool.Envelope{Received: time.Now(), From: "s@example.org", Rcpts: []string{fmt.Sprintf("r@d%d.example", i%10)}, Body: "7BIT"}
		if err := m.Commit(env); err != nil {
			t.Fatal(err)
		}
	}
	r := &Runner{Spool: sp, Config: cfg, Deliverer: tr, Log: maillog.Discard()}
	st, err := r.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != 1000 || st.Removed != 1000 || st.Errors != 0 {
		t.Fatalf("pass: %s", st.Summary())
	}
	seen := map[string]int{}
	subj := regexp.MustCompile(`Subject: (m\d+)`)
	for i, s := range sinks {
		if s.MaxActive > cfg.Delivery.MaxPerDestination {
			t.Errorf("sink %d saw %d sessions at once, limit %d", i, s.MaxActive, cfg.Delivery.MaxPerDestination)
		}
		for _, m := range s.Messages() {
			seen[string(subj.FindSubmatch(m.Data)[1])]++
		}
	}
	if len(seen) != 1000 {
		t.Errorf("%d distinct messages arrived, want 1000", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s arrived %d times", k, n)
		}
	}
	if ents, _ := sp.Scan(nil); len(ents) != 0 {
		t.Errorf("%d left in the queue", len(ents))
	}
}

func TestDelayWarningOnce(t *testing.T) {
	f := &fake{answer: func(string) (spool.Status, string) { return spool.Deferred, "relay said: 451 4.4.1 later" }}
	r, sp, clk := setup(t, f)
	id := queue(t, sp, "s@example.org", "r@example.net")
	for i := 0; i < 12; i++ {
		r.Pass(context.Background())
		clk.t = clk.t.Add(time.Hour)
	}
	ents, _ := sp.Scan(nil)
	var warnings []string
	for _, e := range ents {
		if strings.HasSuffix(e.ID, ".w") {
			warnings = append(warnings, e.ID)
		}
	}
	if len(warnings) != 1 || warnings[0] != id+".w" {
		t.Fatalf("want exactly one delay warning, got %v", warnings)
	}
	env, _ := sp.ReadEnvelope(id + ".w")
	data, _ := sp.OpenData(env)
	b, _ := io.ReadAll(data)
	data.Close()
	for _, want := range []string{"Action: delayed", "Status: 4.4.1", "still being retried"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("warning lacks %q", want)
		}
	}
}

func TestMetricsFile(t *testing.T) {
	f := &fake{answer: func(string) (spool.Status, string) { return spool.Deferred, "451 later" }}
	r, sp, _ := setup(t, f)
	queue(t, sp, "s@example.org", "r@example.net")
	st, _ := r.Pass(context.Background())
	p := filepath.Join(t.TempDir(), "smtpbs.prom")
	if err := WriteMetrics(p, sp, st, time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	for _, want := range []string{"# TYPE smtpbs_queue_messages gauge", "smtpbs_queue_messages 1\n",
		`smtpbs_last_pass_recipients{outcome="deferred"} 1`, "smtpbs_queue_oldest_message_age_seconds ", "smtpbs_last_pass_timestamp_seconds 1.7e+09"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q:\n%s", want, b)
		}
	}
	if st.ExitCode() != 75 {
		t.Errorf("exit code %d after a deferral, want 75", st.ExitCode())
	}
}
