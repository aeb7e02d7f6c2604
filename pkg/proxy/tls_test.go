package proxy

import (
	"testing"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"
)

// tlvparseTLS is go-proxyproto's tlvparse reading of the same TLVs: the
// oracle for clientTLS.
func tlvparseTLS(tlvs []proxyproto.TLV) string {
	ssl, ok := tlvparse.FindSSL(tlvs)
	if !ok || !ssl.ClientSSL() {
		return ""
	}
	if v, ok := ssl.SSLVersion(); ok && v != "" {
		return v
	}
	return "TLS"
}

// clientTLS reads the SSL TLV as tlvparse does: client bit, version
// sub-TLV, other sub-TLVs before it, a client that did not use TLS.
func TestClientTLSMatchesTlvparse(t *testing.T) {
	mk := func(client uint8, subs ...proxyproto.TLV) proxyproto.TLV {
		tlv, err := tlvparse.PP2SSL{Client: client, TLV: subs}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return tlv
	}
	version := proxyproto.TLV{Type: proxyproto.PP2_SUBTYPE_SSL_VERSION, Value: []byte("TLSv1.3")}
	cipher := proxyproto.TLV{Type: proxyproto.PP2_SUBTYPE_SSL_CIPHER, Value: []byte("ECDHE-RSA-AES128-GCM-SHA256")}
	for name, tlvs := range map[string][]proxyproto.TLV{
		"version":        {mk(tlvparse.PP2_BITFIELD_CLIENT_SSL, version)},
		"cipher first":   {mk(tlvparse.PP2_BITFIELD_CLIENT_SSL, cipher, version)},
		"not TLS":        {mk(0, version)},
		"none":           nil,
		"other TLV only": {{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("mx.example")}},
	} {
		if got, want := clientTLS(tlvs), tlvparseTLS(tlvs); got != want {
			t.Errorf("%s: %q, tlvparse says %q", name, got, want)
		}
	}
	if got := clientTLS([]proxyproto.TLV{mk(tlvparse.PP2_BITFIELD_CLIENT_SSL, version)}); got != "TLSv1.3" {
		t.Errorf("version: %q", got)
	}
	// Without a version sub-TLV tlvparse finds no SSL TLV at all; the
	// client still used TLS to the balancer, and the log says so.
	if got := clientTLS([]proxyproto.TLV{mk(tlvparse.PP2_BITFIELD_CLIENT_SSL, cipher)}); got != "TLS" {
		t.Errorf("no version: %q, want TLS", got)
	}
}

// Any SSL TLV value: never a panic, and where tlvparse reads a valid one,
// the same answer.
func FuzzClientTLS(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 0x21, 0, 7, 'T', 'L', 'S', 'v', '1', '.', '3'})
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 0x21, 0, 3, 'a', 'b', 'c'})
	f.Fuzz(func(t *testing.T, v []byte) {
		tlvs := []proxyproto.TLV{{Type: proxyproto.PP2_TYPE_SSL, Value: v}}
		got := clientTLS(tlvs)
		if _, err := tlvparse.SSL(tlvs[0]); err == nil {
			if want := tlvparseTLS(tlvs); got != want {
				t.Errorf("%q: %q, tlvparse says %q", v, got, want)
			}
		}
	})
}
