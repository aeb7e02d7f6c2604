package tlspolicy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DANE for SMTP (RFC 7672). The TLSA records of an MX host count only when
// the whole path to them is signed: the domain's MX RRset (which named the
// host), the host's address records, and the TLSA RRset itself. Only
// usages DANE-TA(2) and DANE-EE(3) apply to SMTP; PKIX usages 0 and 1 are
// unusable (RFC 7672 3.1.3).

// daneState is what the TLSA lookup found for one MX host.
type daneState int

const (
	daneNone     daneState = iota // not applicable: unsigned, or no TLSA
	daneUsable                    // usable records: authenticate with them
	daneUnusable                  // records, none usable: TLS without authentication
	daneTempFail                  // a signed zone's lookup failed: defer
)

type daneResult struct {
	state daneState
	recs  []*dns.TLSA // the usable ones
	note  string      // for people: qrun -route and the log
}

// lookupDANE follows RFC 7672 2.2 for mxHost, named by domain's MX RRset
// (implicit says there was none and mxHost is the domain itself).
func (r *resolver) lookupDANE(ctx context.Context, domain, mxHost, port string) daneResult {
	if !r.trustAD {
		// Its AD bit means nothing: no query could make DANE apply.
		return daneResult{note: "DANE: not applicable: the resolver " + r.addr + " is neither on loopback nor trusted"}
	}
	temp := func(err error) daneResult {
		return daneResult{state: daneTempFail, note: fmt.Sprintf("DANE: %v (temporary)", err)}
	}
	if !strings.EqualFold(strings.TrimSuffix(domain, "."), strings.TrimSuffix(mxHost, ".")) {
		mx, err := r.query(ctx, domain, dns.TypeMX)
		if err != nil {
			return temp(err)
		}
		if !mx.secure {
			return daneResult{note: "DANE: not applicable: the MX records of " + domain + " are not DNSSEC-signed (or the resolver is not trusted)"}
		}
	}
	var secure bool
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		a, err := r.query(ctx, mxHost, qt)
		if err != nil {
			return temp(err)
		}
		if len(a.rrs) > 0 || a.nxdomain {
			secure = a.secure
			if len(a.rrs) > 0 {
				break
			}
		}
	}
	if !secure {
		return daneResult{note: "DANE: not applicable: the address records of " + mxHost + " are not DNSSEC-signed"}
	}
	name := fmt.Sprintf("_%s._tcp.%s", port, strings.TrimSuffix(mxHost, "."))
	t, err := r.query(ctx, name, dns.TypeTLSA)
	if err != nil {
		return temp(err)
	}
	if !t.secure {
		return daneResult{note: "DANE: not applicable: the TLSA answer for " + name + " is not signed"}
	}
	if len(t.rrs) == 0 {
		return daneResult{note: "DANE: " + name + " has no TLSA records (signed denial)"}
	}
	var usable []*dns.TLSA
	var all []string
	for _, rr := range t.rrs {
		rec := rr.(*dns.TLSA)
		all = append(all, fmt.Sprintf("%d %d %d", rec.Usage, rec.Selector, rec.MatchingType))
		if usableTLSA(rec) {
			usable = append(usable, rec)
		}
	}
	if len(usable) == 0 {
		return daneResult{state: daneUnusable, note: fmt.Sprintf("DANE: %s has TLSA records (%s) but none usable: TLS required, not authenticated", name, strings.Join(all, ", "))}
	}
	return daneResult{state: daneUsable, recs: usable, note: fmt.Sprintf("DANE: %s: %d usable TLSA record(s) (%s): TLS required, certificate must match", name, len(usable), strings.Join(all, ", "))}
}

func usableTLSA(r *dns.TLSA) bool {
	if r.Usage != 2 && r.Usage != 3 || r.Selector > 1 || r.MatchingType > 2 {
		return false
	}
	b, err := hex.DecodeString(r.Certificate)
	if err != nil || len(b) == 0 {
		return false
	}
	switch r.MatchingType {
	case 1:
		return len(b) == sha256.Size
	case 2:
		return len(b) == sha512.Size
	}
	return true
}

// matchTLSA says whether cert is the one r describes.
func matchTLSA(r *dns.TLSA, cert *x509.Certificate) bool {
	want, err := hex.DecodeString(r.Certificate)
	if err != nil {
		return false
	}
	data := cert.Raw
	if r.Selector == 1 {
		data = cert.RawSubjectPublicKeyInfo
	}
	switch r.MatchingType {
	case 1:
		h := sha256.Sum256(data)
		data = h[:]
	case 2:
		h := sha512.Sum512(data)
		data = h[:]
	}
	return bytes.Equal(data, want)
}

// errDANEMismatch: the server's certificate matched none of the TLSA records.
var errDANEMismatch = errors.New("certificate does not match any TLSA record")

// verifyDANE returns a tls.Config VerifyConnection for the usable records
// recs of MX host name (RFC 7672 3.1, 3.2). DANE-EE(3) matches the
// server's own certificate and checks neither its names nor its dates;
// DANE-TA(2) matches a certificate of the chain the server sent, which
// then serves as the only trust anchor for an ordinary chain check with
// the MX host name as the reference identifier.
func verifyDANE(recs []*dns.TLSA, name string, now func() time.Time) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		certs := cs.PeerCertificates
		if len(certs) == 0 {
			return errors.New("DANE: the server sent no certificate")
		}
		for _, r := range recs {
			if r.Usage == 3 && matchTLSA(r, certs[0]) {
				return nil
			}
		}
		var lastErr error
		for _, r := range recs {
			if r.Usage != 2 {
				continue
			}
			for i, c := range certs {
				if !matchTLSA(r, c) {
					continue
				}
				roots := x509.NewCertPool()
				roots.AddCert(c)
				inter := x509.NewCertPool()
				for _, ic := range certs[1:i] {
					inter.AddCert(ic)
				}
				if i == 0 {
					// The leaf itself is the trust anchor; still check its name.
					if err := certs[0].VerifyHostname(name); err != nil {
						lastErr = err
						continue
					}
					return nil
				}
				_, err := certs[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter, CurrentTime: now()})
				if err == nil {
					return nil
				}
				lastErr = err
			}
		}
		if lastErr != nil {
			return fmt.Errorf("DANE: %w: %v", errDANEMismatch, lastErr)
		}
		return fmt.Errorf("DANE: %w", errDANEMismatch)
	}
}
