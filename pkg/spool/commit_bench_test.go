package spool

import (
	"bytes"
	"testing"
	"time"
)

// BenchmarkCommit is the cost of accepting one 2 KB message durably: the
// part of every 250 that fsync dominates.
func BenchmarkCommit(b *testing.B) {
	s, err := Create(b.TempDir(), Ops{})
	if err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n"), 32)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := s.New()
		if err != nil {
			b.Fatal(err)
		}
		m.Write(body)
		env := &Envelope{Received: time.Now(), From: "a@b.example", Rcpts: []string{"c@d.example"}, Body: "7BIT"}
		if err := m.Commit(env); err != nil {
			b.Fatal(err)
		}
	}
}
