package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/emersion/go-smtp"
)

// Connection reuse. A transaction that ends in a known protocol state
// leaves its connection open for the next message to the same address
// (same destination, same TLS policy) within this Transport's lifetime,
// which is one qrun run, as sendmail's connection cache and Postfix's
// connection reuse do. The next user sends NOOP first, so a connection
// that died while idle costs a reconnect, never a deferral. Not RSET:
// go-smtp's Reset forgets the EHLO, so the next MAIL would say EHLO again,
// which some servers refuse (Python's smtpd: 503 Duplicate HELO/EHLO);
// a connection is kept only where no transaction is open, so nothing
// needs resetting (RFC 5321 4.1.1.5 and 4.1.1.4: a transaction ends with
// the reply to the final dot). Nothing about
// durability changes: each message's outcomes are recorded by the runner
// exactly as before; only the TCP+EHLO(+TLS+AUTH) set-up is shared.
//
// Measured by bench/ (1,000 messages into smtp-sink, opportunistic TLS to
// a sink that offers none, which costs two connections per message
// without reuse): see the commit that added this file.
const (
	// reuseIdle closes a connection nobody took up again; it also bounds
	// what a caller that never calls CloseIdle leaves open.
	reuseIdle = 2 * time.Second
	// reuseMax and reuseAge bound one connection's life, as Postfix's
	// smtp_connection_reuse_time_limit does.
	reuseMax = 1000
	reuseAge = 5 * time.Minute
)

type conn struct {
	c   *smtp.Client
	sc  *stageConn // the connection c talks over; sets each stage's deadline
	tls bool
	// note is said in the reply of every recipient sent over this
	// connection (a TLS downgrade).
	note   string
	reused bool // this transaction is not the connection's first
	// converted says how this transaction's message was made to fit.
	converted string
	key       string
	uses      int
	born      time.Time
	timer     *time.Timer
}

func reuseKey(tg target, dest Destination) string {
	return fmt.Sprintf("%s\x00%s\x00%v\x00%s\x00%s\x00%s\x00%s", dest.Key, dest.TLS, dest.VerifyTLS, tg.host, tg.addr, tg.hop, policyKey(dest))
}

// get returns a client for tg: an idle one that still answers NOOP
// (unless fresh), or a new one from open.
func (t *Transport) get(ctx context.Context, tg target, dest Destination, fresh bool) (*conn, error) {
	key := reuseKey(tg, dest)
	for !fresh {
		cn := t.takeIdle(key)
		if cn == nil {
			break
		}
		cn.sc.begin("NOOP", t.o.CommandTimeout)
		if err := cn.c.Noop(); err == nil {
			cn.reused = true
			return cn, nil
		}
		cn.c.Close()
	}
	cn, err := t.open(ctx, tg, dest)
	t.observe(dest, cn, err)
	if err != nil {
		return nil, err
	}
	cn.key, cn.born = key, time.Now()
	return cn, nil
}

// quit ends cn politely, within the command timeout.
func (t *Transport) quit(cn *conn) {
	cn.sc.begin("QUIT", t.o.CommandTimeout)
	cn.c.Quit()
	cn.c.Close()
}

// put keeps cn for the next transaction when the last one ended cleanly
// (every command answered, no transaction open), and ends it otherwise.
func (t *Transport) put(cn *conn, clean bool) {
	cn.uses++
	if !clean || cn.uses >= reuseMax || time.Since(cn.born) > reuseAge {
		if clean {
			t.quit(cn)
		}
		cn.c.Close()
		return
	}
	t.mu.Lock()
	if t.idle == nil {
		t.idle = map[string][]*conn{}
	}
	t.idle[cn.key] = append(t.idle[cn.key], cn)
	cn.timer = time.AfterFunc(reuseIdle, func() {
		if t.dropIdle(cn) {
			t.quit(cn)
		}
	})
	t.mu.Unlock()
}

func (t *Transport) takeIdle(key string) *conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.idle[key]
	if len(l) == 0 {
		return nil
	}
	cn := l[len(l)-1]
	t.idle[key] = l[:len(l)-1]
	cn.timer.Stop() // if it fired already, dropIdle will not find cn
	return cn
}

// dropIdle removes cn from the idle list; false if someone took it.
func (t *Transport) dropIdle(cn *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.idle[cn.key]
	for i, x := range l {
		if x == cn {
			t.idle[cn.key] = append(l[:i:i], l[i+1:]...)
			return true
		}
	}
	return false
}

// CloseIdle says QUIT on every idle connection. The runner calls it when
// a run ends; the connections would otherwise close on their own after
// reuseIdle.
func (t *Transport) CloseIdle() {
	t.mu.Lock()
	var all []*conn
	for _, l := range t.idle {
		all = append(all, l...)
	}
	t.idle = nil
	t.mu.Unlock()
	for _, cn := range all {
		cn.timer.Stop()
		t.quit(cn)
	}
}
