package tlspolicy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// MTA-STS (RFC 8461). A domain publishes "v=STSv1; id=..." at _mta-sts
// and a policy at https://mta-sts.DOMAIN/.well-known/mta-sts.txt. The
// policy is cached in the spool for its max_age: the cache is what makes
// MTA-STS worth anything, since an attacker on the path can block the
// TXT lookup and the fetch but cannot unsay a policy we already hold. So
// a failed refresh keeps the cached policy, a missing TXT record keeps it
// too (RFC 8461 5.1), and only an unexpired fetched policy replaces it.

const (
	stsMaxBody   = 64 << 10 // RFC 8461 3.3 suggests 64 KiB
	stsMaxAge    = 31557600 // RFC 8461 3.2: at most a year
	stsDirName   = "mta-sts"
	stsFetchTime = 30 * time.Second
)

type stsPolicy struct {
	ID      string    `json:"id"`
	Mode    string    `json:"mode"` // enforce, testing, none
	MX      []string  `json:"mx"`
	MaxAge  int64     `json:"max_age"`
	Fetched time.Time `json:"fetched"`
	Text    string    `json:"text"` // as served, for TLSRPT's policy-string
}

func (p *stsPolicy) expires() time.Time {
	return p.Fetched.Add(time.Duration(p.MaxAge) * time.Second)
}

// matchMX: RFC 8461 4.1, a pattern "*.example.com" stands for exactly one
// leftmost label.
func (p *stsPolicy) matchMX(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, pat := range p.MX {
		pat = strings.ToLower(strings.TrimSuffix(pat, "."))
		if rest, ok := strings.CutPrefix(pat, "*."); ok {
			if i := strings.IndexByte(host, '.'); i > 0 && host[i+1:] == rest {
				return true
			}
			continue
		}
		if host == pat {
			return true
		}
	}
	return false
}

// parseSTSRecord reads the _mta-sts TXT records; exactly one must start
// with v=STSv1 (RFC 8461 3.1). It returns its id.
func parseSTSRecord(txts []string) (string, error) {
	var id string
	n := 0
	for _, t := range txts {
		fields := strings.Split(t, ";")
		if strings.TrimSpace(fields[0]) != "v=STSv1" {
			continue
		}
		n++
		for _, f := range fields[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
			if k == "id" {
				id = v
			}
		}
	}
	switch {
	case n == 0:
		return "", nil
	case n > 1:
		return "", errors.New("more than one v=STSv1 record")
	case id == "" || len(id) > 32 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "":
		return "", fmt.Errorf("bad id %q", id)
	}
	return id, nil
}

// parseSTSPolicy reads a policy body (RFC 8461 3.2).
func parseSTSPolicy(body string) (*stsPolicy, error) {
	p := &stsPolicy{MaxAge: -1, Text: body}
	var version string
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 0, 4096), stsMaxBody+1)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "version":
			version = v
		case "mode":
			p.Mode = v
		case "mx":
			p.MX = append(p.MX, v)
		case "max_age":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || len(v) > 10 {
				return nil, fmt.Errorf("bad max_age %q", v)
			}
			p.MaxAge = min(n, stsMaxAge)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	switch {
	case version != "STSv1":
		return nil, fmt.Errorf("version %q, want STSv1", version)
	case p.Mode != "enforce" && p.Mode != "testing" && p.Mode != "none":
		return nil, fmt.Errorf("bad mode %q", p.Mode)
	case p.MaxAge < 0:
		return nil, errors.New("no max_age")
	case p.Mode != "none" && len(p.MX) == 0:
		return nil, errors.New("no mx")
	}
	return p, nil
}

func (e *Engine) newHTTPClient() *http.Client {
	tr := &http.Transport{
		Proxy:                 nil, // the policy host is reached directly, as the MX is
		TLSClientConfig:       &tls.Config{RootCAs: e.o.RootCAs, MinVersion: tls.VersionTLS12},
		DisableKeepAlives:     true,
		ResponseHeaderTimeout: 20 * time.Second,
	}
	if e.o.HTTPDial != nil {
		tr.DialContext = e.o.HTTPDial
	} else {
		d := &net.Dialer{Timeout: 10 * time.Second}
		tr.DialContext = d.DialContext
	}
	limit := e.o.FetchLimit
	if limit <= 0 {
		limit = stsFetchTime
	}
	return &http.Client{
		Transport: tr,
		Timeout:   limit,
		// RFC 8461 3.3: "HTTP 3xx redirects MUST NOT be followed".
		CheckRedirect: func(*http.Request, []*http.Request) error { return errors.New("redirect refused (RFC 8461 3.3)") },
	}
}

// fetchSTS gets domain's policy over HTTPS only, bounded in time and size.
func (e *Engine) fetchSTS(ctx context.Context, domain string) (*stsPolicy, error) {
	url := "https://mta-sts." + domain + "/.well-known/mta-sts.txt"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching %s: HTTP %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "text/plain") {
		return nil, fmt.Errorf("fetching %s: Content-Type %q, want text/plain", url, ct)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, stsMaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	if len(body) > stsMaxBody {
		return nil, fmt.Errorf("fetching %s: policy larger than %d bytes", url, stsMaxBody)
	}
	p, err := parseSTSPolicy(string(body))
	if err != nil {
		return nil, fmt.Errorf("policy at %s: %w", url, err)
	}
	return p, nil
}

func (e *Engine) stsPath(domain string) string {
	return filepath.Join(e.o.Dir, stsDirName, domain+".json")
}

func (e *Engine) loadSTS(domain string) *stsPolicy {
	b, err := os.ReadFile(e.stsPath(domain))
	if err != nil {
		return nil
	}
	var p stsPolicy
	if json.Unmarshal(b, &p) != nil {
		return nil
	}
	return &p
}

type stsMemo struct {
	p    *stsPolicy
	note string
}

// stsPolicy is the MTA-STS policy in force for domain (nil: none), with
// a note saying where it came from. It asks DNS once per Engine (one qrun
// pass) per domain.
func (e *Engine) stsPolicy(ctx context.Context, domain string) (*stsPolicy, string) {
	if strings.ContainsAny(domain, "/\\") || domain == "" || strings.HasPrefix(domain, ".") {
		return nil, "MTA-STS: not a domain name"
	}
	e.mu.Lock()
	if m, ok := e.stsMemo[domain]; ok {
		e.mu.Unlock()
		return m.p, m.note
	}
	e.mu.Unlock()
	p, note := e.stsLookup(ctx, domain)
	e.mu.Lock()
	e.stsMemo[domain] = stsMemo{p, note}
	e.mu.Unlock()
	return p, note
}

func (e *Engine) stsLookup(ctx context.Context, domain string) (*stsPolicy, string) {
	now := e.o.Now()
	cached := e.loadSTS(domain)
	if cached != nil && !now.Before(cached.expires()) {
		cached = nil
	}
	useCached := func(why string) (*stsPolicy, string) {
		if cached == nil {
			return nil, "MTA-STS: no policy: " + why
		}
		return cached, fmt.Sprintf("MTA-STS: %s policy cached %s, valid until %s (%s)", cached.Mode,
			cached.Fetched.UTC().Format(time.RFC3339), cached.expires().UTC().Format(time.RFC3339), why)
	}
	txts, err := e.r.txt(ctx, "_mta-sts."+domain)
	if err != nil {
		return useCached(fmt.Sprintf("TXT lookup failed: %v", err))
	}
	id, err := parseSTSRecord(txts)
	if err != nil {
		return useCached(fmt.Sprintf("_mta-sts.%s: %v", domain, err))
	}
	if id == "" {
		return useCached("no _mta-sts TXT record")
	}
	half := time.Duration(0)
	if cached != nil {
		half = time.Duration(cached.MaxAge) * time.Second / 2
	}
	if cached != nil && cached.ID == id && now.Before(cached.Fetched.Add(half)) {
		return useCached("id unchanged")
	}
	p, err := e.fetchSTS(ctx, domain)
	if err != nil {
		e.o.Log("mta_sts_fetch_failed", "domain", domain, "err", err)
		e.stsFailure(domain, err)
		return useCached("refresh failed: " + err.Error())
	}
	p.ID, p.Fetched = id, now.UTC()
	if err := writeJSON(e.stsPath(domain), p); err != nil {
		// The new policy still applies to this pass; the next one fetches again.
		e.o.Log("tlspolicy_error", "domain", domain, "err", err)
	}
	return p, fmt.Sprintf("MTA-STS: %s policy fetched now (id %s, max_age %d)", p.Mode, id, p.MaxAge)
}
