package session

import (
	"testing"

	"smtp-bs/pkg/config"
)

func TestOwnsSender(t *testing.T) {
	cfg, err := config.Parse("t", []byte(`hostname = "mx.example.org"
[smtp]
local_domains = ["example.org", "example.net"]
[auth.senders]
alice = ["alice@example.org", "@alice.example"]
nobody = []
`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		user, from string
		want       bool
	}{
		{"alice", "alice@example.org", true},
		{"alice", "ALICE@Example.ORG", true},
		{"alice", "anything@alice.example", true},
		{"alice", "anything@sub.alice.example", false},
		{"alice", "alice@example.net", false}, // listed: only the list counts
		{"alice", "", true},
		{"nobody", "nobody@example.org", false},
		{"nobody", "", true},
		{"bob", "bob@example.org", true}, // unlisted: name@local domain
		{"bob", "Bob@example.net", true},
		{"bob", "bob@remote.example", false},
		{"bob", "bobby@example.org", false},
		{"bob", "bob", false},
		{"carol@remote.example", "carol@remote.example", true}, // unlisted address user
		{"carol@remote.example", "carol@example.org", false},
	}
	for _, c := range cases {
		if got := ownsSender(cfg, c.user, c.from); got != c.want {
			t.Errorf("ownsSender(%q, %q) = %v, want %v", c.user, c.from, got, c.want)
		}
	}
}

func TestTLSSummary(t *testing.T) {
	for name, bits := range map[string]int{
		"TLS_AES_128_GCM_SHA256": 128, "TLS_AES_256_GCM_SHA384": 256, "TLS_CHACHA20_POLY1305_SHA256": 256,
		"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": 128, "TLS_RSA_WITH_3DES_EDE_CBC_SHA": 112, "unknown": 0,
	} {
		if got := cipherBits(name); got != bits {
			t.Errorf("cipherBits(%s) = %d, want %d", name, got, bits)
		}
	}
	if v := tlsVersion(0x0304); v != "TLSv1.3" {
		t.Errorf("tlsVersion = %q", v)
	}
}
