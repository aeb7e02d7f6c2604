package spool_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"smtp-bs/pkg/spool"
)

// FuzzParseEnvelope: the envelope reader never panics, refuses with
// ErrCorrupt or ErrFutureVersion, and what it accepts survives a round
// trip through Marshal unchanged; no accepted value can hold a line break
// or NUL (qrun puts addresses on SMTP command lines).
func FuzzParseEnvelope(f *testing.F) {
	good := &spool.Envelope{ID: "660e11238526f00474a", Received: time.Date(2026, 11, 22, 17, 0, 0, 123456789, time.UTC),
		From: "a@client.example", Rcpts: []string{"b@remote.example", "jürgen@bücher.example"}, Peer: "127.0.0.1",
		Helo: "client.example", Protocol: "ESMTP", Size: 1234, Body: "8BITMIME", UTF8: true, RequireTLS: true,
		Ret: "HDRS", EnvID: "QQ314159", DSN: map[string]spool.RcptDSN{"b@remote.example": {Notify: []string{"SUCCESS", "FAILURE"}, ORcpt: "rfc822;b@remote.example"},
			"jürgen@bücher.example": {Notify: []string{"NEVER"}}}}
	b, err := good.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add(bytes.Replace(b, []byte("envelope 2"), []byte("envelope 1"), 1))
	f.Add(bytes.Replace(b, []byte("envelope 2"), []byte("envelope 3"), 1))
	f.Add([]byte("smtp-bs-envelope 1\nid 660e11238526f00474a.b1\nreceived 2026-11-22T17:00:00Z\nfrom <>\nsize 0\nrcpt <a@b>\nend\n"))
	f.Add([]byte(""))
	f.Add([]byte("\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := spool.ParseEnvelope(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, spool.ErrCorrupt) && !errors.Is(err, spool.ErrFutureVersion) {
				t.Fatalf("error %v is neither ErrCorrupt nor ErrFutureVersion", err)
			}
			return
		}
		for _, v := range append([]string{env.ID, env.From, env.Peer, env.Helo, env.Protocol, env.Body}, env.Rcpts...) {
			if strings.ContainsAny(v, "\r\n\x00") {
				t.Fatalf("accepted a value with a line break or NUL: %q", v)
			}
		}
		if !spool.ValidID(env.ID) || len(env.Rcpts) == 0 || env.Size < 0 {
			t.Fatalf("accepted an envelope without a valid ID, recipients or size: %+v", env)
		}
		out, err := env.Marshal()
		if err != nil {
			t.Fatalf("accepted %q, but cannot write it back: %v", data, err)
		}
		again, err := spool.ParseEnvelope(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("round trip: %v\n%s", err, out)
		}
		if !again.Received.Equal(env.Received) {
			t.Fatalf("round trip changed the time: %v -> %v", env.Received, again.Received)
		}
		again.Received = env.Received
		if !reflect.DeepEqual(env, again) {
			t.Fatalf("round trip changed the envelope:\n%+v\n%+v", env, again)
		}
	})
}

// FuzzReadState: the state reader never panics, returns one state per
// recipient, and counts what it cannot read as damaged.
func FuzzReadState(f *testing.F) {
	f.Add([]byte("smtp-bs-state 1\n1763800000 sent 0 250 ok\n1763800000 deferred 1 451 later\n1763800000 failed 2 550 no\n1763800000 bounced 2 x.b1\n1763800000 warned 0 x.w\n"))
	f.Add([]byte("smtp-bs-state 1\n1763800000 sent 0 250 o"))
	f.Add([]byte("smtp-bs-state 2\n"))
	f.Add([]byte("garbage\n"))
	f.Add([]byte("smtp-bs-state 1\n-1 sent -1 x\n99999999999999999999 sent 99999999999 y\n1 sent 3\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		// No fsync: durability is not what this explores, speed is.
		sp, err := spool.Create(dir, spool.Ops{Fsync: func(*os.File) error { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		env := &spool.Envelope{ID: "660e11238526f00474a", Rcpts: []string{"a@x", "b@x", "c@x"}}
		if err := os.WriteFile(filepath.Join(dir, "state", env.ID), data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := sp.ReadState(env)
		if err != nil {
			if !errors.Is(err, spool.ErrCorrupt) && !errors.Is(err, spool.ErrFutureVersion) {
				t.Fatalf("error %v is neither ErrCorrupt nor ErrFutureVersion", err)
			}
			return
		}
		if len(st.Rcpts) != len(env.Rcpts) {
			t.Fatalf("%d recipient states for %d recipients", len(st.Rcpts), len(env.Rcpts))
		}
		for i, r := range st.Rcpts {
			if r.Addr != env.Rcpts[i] {
				t.Fatalf("state %d is for %q, want %q", i, r.Addr, env.Rcpts[i])
			}
			switch r.Status {
			case spool.Pending, spool.Sent, spool.Deferred, spool.Failed:
			default:
				t.Fatalf("recipient %d has status %q", i, r.Status)
			}
		}
		// Appending works after whatever was there, and the appended
		// record is read back.
		if err := sp.Append(env.ID, spool.Record{Time: time.Unix(1763900000, 0), Kind: "sent", Rcpt: 1, Detail: "250 appended"}); err != nil {
			t.Fatal(err)
		}
		st2, err := sp.ReadState(env)
		if err != nil {
			t.Fatalf("after Append: %v", err)
		}
		if st2.Rcpts[1].Status != spool.Sent || st2.Rcpts[1].Reply != "250 appended" {
			if st.Rcpts[1].Status != spool.Sent && st.Rcpts[1].Status != spool.Failed {
				t.Fatalf("an appended record was not read back: %+v (file %q)", st2.Rcpts[1], data)
			}
		}
	})
}

// FuzzReadQueued: whatever bytes lie in queue/ID (a damaged or foreign
// file), ReadEnvelope returns an envelope for that ID or refuses with
// ErrCorrupt or ErrFutureVersion, never panics; and an accepted file's
// content opens and reads back exactly as many bytes as the envelope says.
func FuzzReadQueued(f *testing.F) {
	const id = "660e11238526f00474a"
	good := &spool.Envelope{ID: id, Received: time.Date(2026, 11, 22, 17, 0, 0, 0, time.UTC),
		From: "a@client.example", Rcpts: []string{"b@remote.example"}, Body: "7BIT"}
	dir := f.TempDir()
	sp, err := spool.Create(dir, spool.Ops{Fsync: func(*os.File) error { return nil }})
	if err != nil {
		f.Fatal(err)
	}
	if err := sp.Enqueue(good, []byte("Subject: x\r\n\r\nbody\r\n")); err != nil {
		f.Fatal(err)
	}
	whole, err := os.ReadFile(filepath.Join(dir, "queue", id))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(whole)
	f.Add(whole[:len(whole)-5])
	f.Add(whole[3:])
	f.Add(append(append([]byte(nil), whole[:len(whole)-21]...), []byte("99999999999999999999\n")...))
	v1, _ := good.Marshal()
	f.Add(bytes.Replace(v1, []byte("envelope 2"), []byte("envelope 1"), 1))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "queue", id)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		env, err := sp.ReadEnvelope(id)
		if err != nil {
			if !errors.Is(err, spool.ErrCorrupt) && !errors.Is(err, spool.ErrFutureVersion) {
				t.Fatalf("error %v is neither ErrCorrupt nor ErrFutureVersion", err)
			}
			return
		}
		if env.ID != id || env.Size < 0 {
			t.Fatalf("accepted %+v", env)
		}
		d, err := sp.OpenData(env)
		if err != nil {
			if !errors.Is(err, spool.ErrCorrupt) {
				t.Fatalf("OpenData: %v", err)
			}
			return
		}
		defer d.Close()
		b, err := io.ReadAll(d)
		if err != nil || int64(len(b)) != env.Size {
			t.Fatalf("content: %d bytes (%v), envelope says %d", len(b), err, env.Size)
		}
	})
}
