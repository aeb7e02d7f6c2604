package tlspolicy

import (
	"crypto/x509"
	"path/filepath"
	"strconv"

	"smtp-bs/pkg/config"
)

// DirName is the directory of the spool that holds the policy state.
const DirName = "tlspolicy"

// OptionsFromConfig is what [tls_policy] and [delivery] say; roots is the
// CA pool of [delivery] tls_ca_file (nil: the system's).
func OptionsFromConfig(cfg *config.Config, roots *x509.CertPool) Options {
	p := cfg.TLSPolicy
	o := Options{
		DANE:             p.DANE,
		MTASTS:           p.MTASTS,
		Remember:         p.Remember,
		TLSRPT:           p.TLSRPT,
		Resolver:         cfg.Delivery.Resolver,
		TrustedResolvers: p.TrustedResolvers,
		Dir:              filepath.Join(cfg.Spool.Dir, DirName),
		RootCAs:          roots,
		Port:             strconv.Itoa(cfg.Delivery.MXPort),
		Overrides:        map[string]Override{},
	}
	for d, ov := range p.Domains {
		o.Overrides[d] = Override{Policy: ov.Policy, Reason: ov.Reason}
	}
	return o
}
