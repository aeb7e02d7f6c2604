package mailauth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"net/textproto"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	"smtp-bs/third_party/publicsuffix"

	"smtp-bs/pkg/dnsclient"
)

// MaxSignatures bounds the DKIM signatures verified in one message; the
// rest are ignored (a message with 1000 signatures costs no more).
const MaxSignatures = 8

// DKIM is the outcome of one signature.
type DKIM struct {
	Result string // pass, fail, neutral, temperror, permerror
	Domain string // d=
	AUID   string // i=
	Err    error
}

// DMARC is the outcome of the DMARC evaluation.
type DMARC struct {
	Result string // pass, fail, none, temperror, permerror
	From   string // the RFC5322.From domain
	// Policy is what the domain asks for a failing message: none,
	// quarantine or reject ("" unless Result is fail).
	Policy string
	Err    error
}

// Results is everything said of one message.
type Results struct {
	SPF   SPF
	DKIM  []DKIM
	DMARC DMARC
	// Checked: DKIM and DMARC were evaluated (else the header has spf
	// alone).
	Checked bool
}

// CheckMessage verifies every DKIM signature of the message in r and
// evaluates DMARC with spf, within ctx's deadline.
func CheckMessage(ctx context.Context, res dnsclient.Resolver, r io.Reader, spf SPF) (Results, error) {
	out := Results{SPF: spf, Checked: true}
	br := bufio.NewReaderSize(r, 32<<10)
	// The header is read twice: here for From, by dkim for the signatures.
	hdr, err := peekHeader(br)
	if err != nil {
		return out, err
	}
	lookup := func(name string) ([]string, error) { return res.LookupTXT(ctx, name) }
	verifs, err := dkim.VerifyWithOptions(br, &dkim.VerifyOptions{LookupTXT: lookup, MaxVerifications: MaxSignatures})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		// A header dkim cannot read: every signature is unverifiable.
		out.DKIM = append(out.DKIM, DKIM{Result: "permerror", Err: err})
	}
	for _, v := range verifs {
		d := DKIM{Result: "pass", Domain: v.Domain, AUID: v.Identifier, Err: v.Err}
		switch {
		case v.Err == nil:
		case dkim.IsTempFail(v.Err):
			d.Result = "temperror"
		case dkim.IsPermFail(v.Err):
			d.Result = "permerror"
		default:
			d.Result = "fail"
		}
		out.DKIM = append(out.DKIM, d)
	}
	out.DMARC = evalDMARC(hdr, lookup, out)
	return out, nil
}

// peekHeader reads the header block without consuming it.
func peekHeader(br *bufio.Reader) (textproto.MIMEHeader, error) {
	for n := 4096; ; n *= 2 {
		b, err := br.Peek(n)
		if i := strings.Index(string(b), "\r\n\r\n"); i >= 0 {
			return textproto.NewReader(bufio.NewReader(strings.NewReader(string(b[:i+4])))).ReadMIMEHeader()
		}
		if err != nil {
			// No end of header in reach (a header over 32 KiB, or no
			// body): what was read is all there is to see.
			h, _ := textproto.NewReader(bufio.NewReader(strings.NewReader(string(b) + "\r\n\r\n"))).ReadMIMEHeader()
			return h, nil
		}
	}
}

// evalDMARC is RFC 7489 section 6.6 for one message.
func evalDMARC(hdr textproto.MIMEHeader, lookup func(string) ([]string, error), r Results) DMARC {
	froms := hdr.Values("From")
	if len(froms) != 1 {
		return DMARC{Result: "permerror", Err: fmt.Errorf("%d From fields", len(froms))}
	}
	addrs, err := mail.ParseAddressList(froms[0])
	if err != nil || len(addrs) != 1 {
		return DMARC{Result: "permerror", Err: fmt.Errorf("From is not one address: %v", err)}
	}
	_, dom, _ := strings.Cut(addrs[0].Address, "@")
	dom = strings.ToLower(strings.TrimSuffix(dom, "."))
	d := DMARC{From: dom}
	org := orgDomain(dom)
	rec, err := dmarc.LookupWithOptions(dom, &dmarc.LookupOptions{LookupTXT: lookup})
	sub := false
	if errors.Is(err, dmarc.ErrNoPolicy) && org != dom {
		rec, err = dmarc.LookupWithOptions(org, &dmarc.LookupOptions{LookupTXT: lookup})
		sub = true
	}
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		d.Result = "none"
		return d
	case dmarc.IsTempFail(err):
		d.Result, d.Err = "temperror", err
		return d
	case err != nil:
		d.Result, d.Err = "permerror", err
		return d
	}
	if spfAligned(r.SPF, dom, rec.SPFAlignment) || dkimAligned(r.DKIM, dom, rec.DKIMAlignment) {
		d.Result = "pass"
		return d
	}
	d.Result, d.Policy = "fail", string(rec.Policy)
	if sub && rec.SubdomainPolicy != "" {
		d.Policy = string(rec.SubdomainPolicy)
	}
	return d
}

func spfAligned(s SPF, from string, mode dmarc.AlignmentMode) bool {
	return s.Result == "pass" && aligned(s.Domain, from, mode)
}

func dkimAligned(ds []DKIM, from string, mode dmarc.AlignmentMode) bool {
	for _, d := range ds {
		if d.Result == "pass" && aligned(d.Domain, from, mode) {
			return true
		}
	}
	return false
}

// aligned is RFC 7489 3.1: the same name (strict), or the same
// organizational domain (relaxed, the default).
func aligned(id, from string, mode dmarc.AlignmentMode) bool {
	id = strings.ToLower(strings.TrimSuffix(id, "."))
	if id == "" {
		return false
	}
	if id == from {
		return true
	}
	return mode != dmarc.AlignmentStrict && orgDomain(id) == orgDomain(from)
}

// orgDomain is the organizational domain: one label below the public
// suffix (RFC 7489 3.2).
func orgDomain(d string) string {
	if o, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
		return o
	}
	return d
}
