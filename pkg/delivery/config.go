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
	}
	if d.TLSCAFile != "" {
		pem, err := os.ReadFile(d.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("delivery: tls_ca_file: %w", err)
		}
		o.RootCAs = x509.NewCertPool()
		if !o.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("delivery: tls_ca_file %s holds no PEM certificate", d.TLSCAFile)
		}
	}
	if d.AuthFile != "" {
		var err error
		if o.AuthUser, o.AuthPass, err = ReadAuthFile(d.AuthFile); err != nil {
			return nil, err
		}
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
