package tlspolicy

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// TLSRPT aggregation (RFC 8460). Each connection made under a DANE or
// MTA-STS policy adds one to its policy's success or failure count in
// tlsrpt/DAY/DOMAIN.json; a qrun pass after the day has ended turns each
// file into one report (SendReports).

const rptDirName = "tlsrpt"

// rptPolicy is one policy's counts for one day: RFC 8460 4.4's
// "policies" element, kept in the spool as it will be sent.
type rptPolicy struct {
	Policy struct {
		Type    string   `json:"policy-type"` // sts, tlsa
		String  []string `json:"policy-string,omitempty"`
		Domain  string   `json:"policy-domain"`
		MXHosts []string `json:"mx-host,omitempty"`
	} `json:"policy"`
	Summary struct {
		Success int64 `json:"total-successful-session-count"`
		Failure int64 `json:"total-failure-session-count"`
	} `json:"summary"`
	Failures []*rptFailure `json:"failure-details,omitempty"`
}

type rptFailure struct {
	ResultType  string `json:"result-type"`
	ReceivingMX string `json:"receiving-mx-hostname,omitempty"`
	Count       int64  `json:"failed-session-count"`
	Reason      string `json:"failure-reason-code,omitempty"`
}

func (e *Engine) rptPath(day time.Time, domain string) string {
	return filepath.Join(e.o.Dir, rptDirName, day.UTC().Format("2006-01-02"), domain+".json")
}

// count adds one session to domain's policy of this kind today.
func (e *Engine) count(domain, ptype string, pstring, mx []string, mxHost, result, reason string) {
	if !e.o.TLSRPT || !isDNSName(domain) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	path := e.rptPath(e.o.Now(), domain)
	var pols []*rptPolicy
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &pols)
	}
	var p *rptPolicy
	for _, x := range pols {
		if x.Policy.Type == ptype && strings.Join(x.Policy.String, "\n") == strings.Join(pstring, "\n") {
			p = x
		}
	}
	if p == nil {
		p = &rptPolicy{}
		p.Policy.Type, p.Policy.String, p.Policy.Domain, p.Policy.MXHosts = ptype, pstring, domain, mx
		pols = append(pols, p)
	}
	if result == "" {
		p.Summary.Success++
	} else {
		p.Summary.Failure++
		var f *rptFailure
		for _, x := range p.Failures {
			if x.ResultType == result && x.ReceivingMX == mxHost && x.Reason == reason {
				f = x
			}
		}
		if f == nil {
			f = &rptFailure{ResultType: result, ReceivingMX: mxHost, Reason: reason}
			p.Failures = append(p.Failures, f)
		}
		f.Count++
	}
	if err := writeJSON(path, pols); err != nil {
		e.o.Log("tlspolicy_error", "err", err)
	}
}

// report counts one connection under d.
func (e *Engine) report(d Decision, cs *tls.ConnectionState, err error, _ time.Time) {
	var ptype string
	var pstring, mx []string
	switch {
	case d.Source == "dane" && d.Mode == DANE:
		ptype, pstring = "tlsa", d.daneRec
	case d.sts != nil:
		ptype, pstring, mx = "sts", splitLines(d.sts.Text), d.sts.MX
	default:
		return
	}
	result, reason := "", ""
	switch {
	case d.Defer != "":
		result, reason = "validation-failure", d.Defer
	case err != nil:
		result, reason = resultType(err), err.Error()
		if result == "" {
			return // not a TLS matter (connection refused, timeout): not counted
		}
	case cs == nil:
		result = "starttls-not-supported"
	case ptype == "sts" && d.sts.Mode == "testing":
		// Testing mode delivers whatever the host and certificate; say
		// what enforce would have done.
		if !d.sts.matchMX(d.ServerName) {
			result, reason = "validation-failure", d.ServerName+" is not an MX host the policy lists"
		} else if verr := e.webPKIOK(*cs, d.ServerName); verr != nil {
			result, reason = resultType(verr), verr.Error()
		}
	}
	e.count(d.domain, ptype, pstring, mx, d.ServerName, result, reason)
}

// stsFailure counts a policy fetch that failed.
func (e *Engine) stsFailure(domain string, err error) {
	e.count(domain, "sts", nil, nil, "", "sts-policy-fetch-error", err.Error())
}

// resultType maps a handshake error to RFC 8460 4.3's result types; ""
// when the error is not about TLS.
func resultType(err error) string {
	var he x509.HostnameError
	var ie x509.CertificateInvalidError
	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &he):
		return "certificate-host-mismatch"
	case errors.As(err, &ie) && ie.Reason == x509.Expired:
		return "certificate-expired"
	case errors.As(err, &ua):
		return "certificate-not-trusted"
	case errors.Is(err, errDANEMismatch):
		return "validation-failure"
	}
	s := err.Error()
	switch {
	case strings.Contains(s, "STARTTLS"):
		return "starttls-not-supported"
	case strings.Contains(s, "tls:") || strings.Contains(s, "x509:"):
		return "validation-failure"
	}
	return ""
}

func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
