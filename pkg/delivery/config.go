package delivery

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"smtp-bs/pkg/config"
	"smtp-bs/pkg/tlspolicy"
)

// FromConfig builds the Transport the [delivery] section describes.
func FromConfig(cfg *config.Config) (*Transport, error) {
	d := cfg.Delivery
	self := []string{cfg.Hostname, "localhost"}
	for _, d := range cfg.SMTP.LocalDomains {
		if !cfg.Local.IsLocalDelivery(d) {
			self = append(self, d)
		}
	}
	o := Options{
		SelfDomains:    self,
		Hostname:       cfg.Hostname,
		Smarthosts:     d.Smarthost,
		Routes:         d.Routes,
		SmarthostTLS:   d.SmarthostTLS,
		MXTLS:          d.MXTLS,
		TLSVerify:      d.TLSVerify,
		Port:           strconv.Itoa(d.MXPort),
		ConnectTimeout: d.ConnectTimeout.Duration,
		CommandTimeout: d.CommandTimeout.Duration,
		DataTimeout:    d.DataTimeout.Duration,
	}
	var err error
	if o.RootCAs, err = readCA(d.TLSCAFile); err != nil {
		return nil, err
	}
	if d.AuthFile != "" {
		if o.AuthUser, o.AuthPass, err = ReadAuthFile(d.AuthFile); err != nil {
			return nil, err
		}
	}
	for hop, h := range d.Hosts {
		hp := HopPolicy{TLS: h.TLS, Verify: h.TLSVerify}
		if hp.RootCAs, err = readCA(h.TLSCAFile); err != nil {
			return nil, fmt.Errorf("%w (for %s)", err, hop)
		}
		if h.AuthFile != nil {
			hp.Auth = &Credentials{}
			if *h.AuthFile != "" {
				if hp.Auth.User, hp.Auth.Pass, err = ReadAuthFile(*h.AuthFile); err != nil {
					return nil, fmt.Errorf("%w (for %s)", err, hop)
				}
			}
		}
		if o.Hops == nil {
			o.Hops = map[string]HopPolicy{}
		}
		o.Hops[hop] = hp
	}
	if d.Resolver != "" {
		server := d.Resolver
		o.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			dd := net.Dialer{Timeout: 5 * time.Second}
			return dd.DialContext(ctx, network, server)
		}}
	}
	pol, err := tlspolicy.New(tlspolicy.OptionsFromConfig(cfg, o.RootCAs))
	if err != nil {
		return nil, err
	}
	o.TLSPolicyEngine = pol
	return New(o), nil
}

// readCA reads a PEM bundle of CA certificates; "" is nil (the system's).
func readCA(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("delivery: tls_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("delivery: tls_ca_file %s holds no PEM certificate", path)
	}
	return pool, nil
}
