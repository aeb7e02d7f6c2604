package tlspolicy

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"smtp-bs/pkg/spool"
)

// parseTLSRPTRecord returns the mailto: addresses in the rua of the one
// v=TLSRPTv1 record (RFC 8460 3); https: ones are left out (not sent).
func parseTLSRPTRecord(txts []string) ([]string, error) {
	var rua []string
	n := 0
	for _, t := range txts {
		fields := strings.Split(t, ";")
		if strings.TrimSpace(fields[0]) != "v=TLSRPTv1" {
			continue
		}
		n++
		for _, f := range fields[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
			if k != "rua" {
				continue
			}
			for _, u := range strings.Split(v, ",") {
				addr, ok := strings.CutPrefix(strings.TrimSpace(u), "mailto:")
				if !ok {
					continue
				}
				addr, _, _ = strings.Cut(addr, "?")
				if a, err := url.PathUnescape(addr); err == nil && strings.Count(a, "@") == 1 &&
					!strings.ContainsAny(a, " \t\r\n<>\x00") && len(a) < 256 {
					rua = append(rua, a)
				}
			}
		}
	}
	if n > 1 {
		return nil, errors.New("more than one v=TLSRPTv1 record")
	}
	return rua, nil
}

// Report is RFC 8460 4.3's JSON report.
type Report struct {
	Organization string `json:"organization-name"`
	DateRange    struct {
		Start time.Time `json:"start-datetime"`
		End   time.Time `json:"end-datetime"`
	} `json:"date-range"`
	Contact  string       `json:"contact-info"`
	ReportID string       `json:"report-id"`
	Policies []*rptPolicy `json:"policies"`
}

// SendReports queues, for every day before today, one report per policy
// domain that publishes a mailto: rua, to be delivered by qrun like any
// message; each day's counts are removed once queued. hostname names us
// in the report; the postmaster address there is postmaster@hostname.
func (e *Engine) SendReports(ctx context.Context, sp *spool.Spool, hostname string) (int, error) {
	root := filepath.Join(e.o.Dir, rptDirName)
	days, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("tlspolicy: %w", err)
	}
	today := e.o.Now().UTC().Format("2006-01-02")
	sent := 0
	for _, dd := range days {
		day, err := time.Parse("2006-01-02", dd.Name())
		if err != nil || dd.Name() >= today {
			continue
		}
		files, _ := os.ReadDir(filepath.Join(root, dd.Name()))
		for _, f := range files {
			domain, ok := strings.CutSuffix(f.Name(), ".json")
			if !ok {
				continue
			}
			path := filepath.Join(root, dd.Name(), f.Name())
			n, keep := e.sendOne(ctx, sp, hostname, day, domain, path)
			sent += n
			if keep && e.o.Now().Sub(day) < 7*24*time.Hour {
				continue // a DNS failure: try again next pass, for a week
			}
			os.Remove(path)
		}
		os.Remove(filepath.Join(root, dd.Name())) // only once empty
	}
	return sent, nil
}

// sendOne queues the report of one domain and day; keep asks for another
// try later.
func (e *Engine) sendOne(ctx context.Context, sp *spool.Spool, hostname string, day time.Time, domain, path string) (int, bool) {
	if e.r == nil {
		return 0, true
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, true
	}
	var pols []*rptPolicy
	if err := json.Unmarshal(b, &pols); err != nil {
		e.o.Log("tlspolicy_error", "file", path, "err", err)
		return 0, false
	}
	txts, err := e.r.txt(ctx, "_smtp._tls."+domain)
	if err != nil {
		return 0, true
	}
	rua, err := parseTLSRPTRecord(txts)
	if err != nil || len(rua) == 0 {
		return 0, false // nobody asked for it
	}
	rep := Report{Organization: hostname, Contact: "postmaster@" + hostname, Policies: pols}
	rep.DateRange.Start = day.UTC()
	rep.DateRange.End = day.UTC().Add(24*time.Hour - time.Second)
	rep.ReportID = fmt.Sprintf("%s_%s@%s", day.Format("2006-01-02"), domain, hostname)
	content, err := reportMessage(&rep, domain, hostname, e.o.Now())
	if err != nil {
		e.o.Log("tlspolicy_error", "domain", domain, "err", err)
		return 0, false
	}
	h := fnv.New64a()
	h.Write([]byte(rep.ReportID))
	sum := h.Sum64()
	env := &spool.Envelope{
		// Known in advance, so a pass that crashed after queueing it
		// finds it there (ErrExists) instead of sending it twice.
		ID:       fmt.Sprintf("%013x%06x.%08x.r", day.Add(24*time.Hour).UnixMicro(), sum&0xffffff, sum>>32),
		Received: e.o.Now(), From: "", Rcpts: rua, Peer: "local", Helo: hostname, Protocol: "local", Body: "7BIT",
	}
	if err := sp.Enqueue(env, content); err != nil && !errors.Is(err, spool.ErrExists) {
		e.o.Log("tlspolicy_error", "domain", domain, "err", err)
		return 0, true
	}
	e.o.Log("tlsrpt_queued", "domain", domain, "id", env.ID, "rua", strings.Join(rua, ","))
	return 1, false
}

// reportMessage is RFC 8460 5.3's message: multipart/report with
// report-type "tlsrpt", the JSON gzipped as application/tlsrpt+gzip.
func reportMessage(rep *Report, domain, hostname string, now time.Time) ([]byte, error) {
	js, err := json.Marshal(rep)
	if err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(js)
	if err := zw.Close(); err != nil {
		return nil, err
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	tp, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=us-ascii"}})
	fmt.Fprintf(tp, "This is an aggregate TLS report (RFC 8460) from %s for %s.\r\n", hostname, domain)
	name := fmt.Sprintf("%s!%s!%d!%d.json.gz", hostname, domain, rep.DateRange.Start.Unix(), rep.DateRange.End.Unix())
	ap, _ := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {`application/tlsrpt+gzip; name="` + name + `"`},
		"Content-Transfer-Encoding": {"base64"},
		"Content-Disposition":       {`attachment; filename="` + name + `"`},
	})
	enc := base64.StdEncoding.EncodeToString(gz.Bytes())
	for len(enc) > 76 {
		fmt.Fprintf(ap, "%s\r\n", enc[:76])
		enc = enc[76:]
	}
	fmt.Fprintf(ap, "%s\r\n", enc)
	mw.Close()
	var m bytes.Buffer
	fmt.Fprintf(&m, "From: <postmaster@%s>\r\n", hostname)
	fmt.Fprintf(&m, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&m, "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n", domain, hostname, rep.ReportID)
	fmt.Fprintf(&m, "TLS-Report-Domain: %s\r\nTLS-Report-Submitter: %s\r\n", domain, hostname)
	fmt.Fprintf(&m, "Message-ID: <%s>\r\n", rep.ReportID)
	fmt.Fprintf(&m, "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"%s\"\r\n\r\n", mw.Boundary())
	m.Write(body.Bytes())
	return m.Bytes(), nil
}
