package mailbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"smtp-bs/pkg/aliases"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/delivery"
	"smtp-bs/pkg/localuser"
	"smtp-bs/pkg/spool"
)

// LocalKey is the destination key of local delivery.
const LocalKey = "local"

// Local delivers recipients of [local] domains on this host (through the
// aliases file) and passes every other recipient to Remote.
//
// An alias that names addresses elsewhere becomes a new message for those
// addresses (queue ID ORIG.xN, N the recipient's index), queued before the
// original recipient is recorded as done, so a crash repeats it at most.
type Local struct {
	Config *config.Config
	Remote delivery.Deliverer
	Spool  *spool.Spool
	// LookupUser finds a system user's uid (a seam for tests).
	LookupUser func(name string) (uid int, err error)
	Now        func() time.Time
	// Wrap, if set, runs |program deliveries through another command
	// (qrun's narrower sandbox for programs, pkg/sandbox).
	Wrap Wrapper
}

// Route sends local domains to local delivery.
func (l *Local) Route(rcpt string) delivery.Destination {
	if l.Config.Local.IsLocalDelivery(domainOf(rcpt)) {
		return delivery.Destination{Key: LocalKey}
	}
	return l.Remote.Route(rcpt)
}

// Deliver delivers rcpts locally, or passes them on.
func (l *Local) Deliver(ctx context.Context, dest delivery.Destination, env *spool.Envelope, rcpts []int, data io.Reader) []delivery.Result {
	if dest.Key != LocalKey {
		return l.Remote.Deliver(ctx, dest, env, rcpts, data)
	}
	content, err := io.ReadAll(data)
	out := make([]delivery.Result, 0, len(rcpts))
	if err != nil {
		for _, r := range rcpts {
			out = append(out, delivery.Result{Rcpt: r, Status: spool.Deferred, Reply: "reading the message: " + err.Error()})
		}
		return out
	}
	tbl, err := aliases.Load(l.Config.Local.Aliases, l.Config.Local.Postmaster)
	for _, r := range rcpts {
		if err != nil {
			out = append(out, delivery.Result{Rcpt: r, Status: spool.Deferred, Reply: err.Error()})
			continue
		}
		out = append(out, l.one(ctx, tbl, env, r, content))
	}
	return out
}

// one delivers to every target of one recipient. All targets must take the
// message: a temporary failure of one defers the recipient (and a retry may
// repeat the others), a permanent one fails it.
func (l *Local) one(ctx context.Context, tbl *aliases.Table, env *spool.Envelope, idx int, content []byte) delivery.Result {
	rcpt := env.Rcpts[idx]
	targets, err := tbl.Expand(localOf(rcpt), l.Config.Local.IsLocalDelivery)
	if err != nil {
		return delivery.Result{Rcpt: idx, Status: spool.Deferred, Reply: err.Error()}
	}
	var done, remote []string
	var tempErr, permErr []string
	for _, tg := range targets {
		var err error
		switch tg.Kind {
		case aliases.Address:
			remote = append(remote, tg.Value)
			continue
		case aliases.Mailbox:
			err = l.mailbox(ctx, env, rcpt, tg.Value, content)
		case aliases.Program:
			err = RunProgramIn(ctx, l.Wrap, l.Config.Local.ProgramDir, tg.Value,
				[]string{"SENDER=" + env.From, "RECIPIENT=" + rcpt, "QUEUE_ID=" + env.ID},
				lfReader(localHeader(env.From, rcpt), content), l.Config.Local.ProgramTimeout.Duration)
		case aliases.File:
			err = l.file(env, rcpt, tg.Value, content)
		}
		switch {
		case err == nil:
			done = append(done, tg.String())
		case IsTemp(err):
			tempErr = append(tempErr, err.Error())
		default:
			permErr = append(permErr, err.Error())
		}
	}
	if len(remote) > 0 && len(tempErr) == 0 {
		if err := l.forward(env, idx, remote, content); err != nil {
			tempErr = append(tempErr, err.Error())
		} else {
			done = append(done, fmt.Sprintf("forwarded to %s as %s.x%d", strings.Join(remote, ", "), env.ID, idx))
		}
	}
	switch {
	case len(tempErr) > 0:
		return delivery.Result{Rcpt: idx, Status: spool.Deferred, Reply: public(false, tempErr), Detail: strings.Join(tempErr, "; ")}
	case len(permErr) > 0:
		detail := strings.Join(permErr, "; ")
		if len(done) > 0 {
			detail += " (delivered to the others: " + strings.Join(done, ", ") + ")"
		}
		return delivery.Result{Rcpt: idx, Status: spool.Failed, Reply: public(true, permErr), Detail: detail}
	}
	return delivery.Result{Rcpt: idx, Status: spool.Sent, Reply: "delivered: " + strings.Join(done, ", "), Final: len(remote) == 0}
}

// enhancedCode finds the status code an error text starts with.
var enhancedCode = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}\b`)

// public is what the sender hears of a failed local recipient: the status
// code of the first error and no more. The errors name program_dir,
// file_dir, mailbox paths and alias targets, which a (possibly hostile)
// sender has no business reading; they go to the log (Result.Detail).
func public(permanent bool, errs []string) string {
	code, word := "4.3.0", "deferred"
	if permanent {
		code, word = "5.0.0", "refused"
	}
	if m := enhancedCode.FindString(errs[0]); m != "" && m[0] == code[0] {
		code = m
	}
	return code + " local delivery " + word
}

func (l *Local) mailbox(ctx context.Context, env *spool.Envelope, rcpt, name string, content []byte) error {
	lc := &l.Config.Local
	if !localuser.Valid(name) {
		return fmt.Errorf("5.1.1 <%s>: %q is not a valid user name", rcpt, name)
	}
	now := time.Now()
	if l.Now != nil {
		now = l.Now()
	}
	switch lc.Mailbox {
	case "lmtp":
		// No Return-Path or Delivered-To of ours: the LMTP server does the
		// final delivery and adds its own (Dovecot does), from the envelope.
		errs, err := DeliverLMTP(ctx, lc.LMTP, l.Config.Hostname, env.From, []string{name + "@" + domainOf(rcpt)}, env.UTF8 && delivery.NeedsSMTPUTF8(env.From, []string{rcpt}, []int{0}), env.Size,
			bytes.NewReader(content), l.Config.Delivery.CommandTimeout.Duration)
		if err != nil {
			return err
		}
		return errs[0]
	}
	hdr := localHeader(env.From, rcpt)
	uid, err := l.lookup(name)
	if err != nil {
		return err
	}
	if lc.Mailbox == "maildir" {
		return DeliverMaildir(lc.MaildirRoot, name, l.Config.Hostname, hdr, bytes.NewReader(content), now)
	}
	return AppendMbox(lc.MailSpool, name, MboxOptions{UID: uid}, env.From, hdr, bytes.NewReader(content), now)
}

func (l *Local) lookup(name string) (int, error) {
	look := l.LookupUser
	if look == nil {
		look = localuser.Lookup
	}
	uid, err := look(name)
	if errors.Is(err, localuser.ErrNoUser) {
		return 0, fmt.Errorf("5.1.1 user %s unknown", name)
	}
	if err != nil {
		return 0, temp("looking up user %s: %w", name, err)
	}
	return uid, nil
}

// file appends to a file target, which must lie inside [local] file_dir.
func (l *Local) file(env *spool.Envelope, rcpt, path string, content []byte) error {
	dir := l.Config.Local.FileDir
	clean := filepath.Clean(path)
	if dir == "" || !strings.HasPrefix(clean, filepath.Clean(dir)+"/") {
		return fmt.Errorf("5.7.1 file deliveries are allowed only inside [local] file_dir: %s", path)
	}
	rel := strings.TrimPrefix(clean, filepath.Clean(dir)+"/")
	return AppendMbox(dir, rel, MboxOptions{UID: -1}, env.From, localHeader(env.From, rcpt), bytes.NewReader(content), time.Now())
}

// forward queues the message again for the addresses an alias named.
func (l *Local) forward(env *spool.Envelope, idx int, to []string, content []byte) error {
	child := &spool.Envelope{
		ID: fmt.Sprintf("%s.x%d", env.ID, idx), Received: env.Received, From: env.From, Rcpts: to,
		Peer: "local", Helo: l.Config.Hostname, Protocol: "local", Body: env.Body, UTF8: env.UTF8,
	}
	if err := l.Spool.Enqueue(child, content); err != nil && !errors.Is(err, spool.ErrExists) {
		return fmt.Errorf("forwarding to %s: %w", strings.Join(to, ", "), err)
	}
	return nil
}

func domainOf(addr string) string {
	return strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
}

func localOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[:i]
	}
	return addr
}

// lfReader gives programs the message with LF line endings, as Unix
// programs expect.
func lfReader(header, content []byte) io.Reader {
	lf := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }
	return io.MultiReader(bytes.NewReader(lf(header)), bytes.NewReader(lf(content)))
}

// Explain says, for a person, where a local recipient's mail goes.
func Explain(cfg *config.Config, addr string) string {
	var b strings.Builder
	lc := &cfg.Local
	fmt.Fprintf(&b, "<%s>: delivered on this host (local domain %s)\n", addr, domainOf(addr))
	if err := localuser.Known(cfg, localOf(addr)); err != nil {
		fmt.Fprintf(&b, "  refused at RCPT time: %v\n", err)
		return b.String()
	}
	tbl, err := aliases.Load(lc.Aliases, lc.Postmaster)
	if err != nil {
		fmt.Fprintf(&b, "  aliases: %v\n", err)
		return b.String()
	}
	targets, err := tbl.Expand(localOf(addr), lc.IsLocalDelivery)
	if err != nil {
		fmt.Fprintf(&b, "  aliases: %v\n", err)
		return b.String()
	}
	for _, tg := range targets {
		switch tg.Kind {
		case aliases.Mailbox:
			where := filepath.Join(lc.MailSpool, tg.Value) + " (mbox)"
			switch lc.Mailbox {
			case "maildir":
				where = filepath.Join(lc.MaildirRoot, tg.Value) + "/ (Maildir)"
			case "lmtp":
				where = "LMTP " + lc.LMTP
			}
			fmt.Fprintf(&b, "  mailbox of %s: %s\n", tg.Value, where)
		case aliases.Address:
			fmt.Fprintf(&b, "  forwarded to <%s>\n", tg.Value)
		case aliases.Program:
			fmt.Fprintf(&b, "  program |%s (allowed only in %q)\n", tg.Value, lc.ProgramDir)
		case aliases.File:
			fmt.Fprintf(&b, "  file %s (allowed only in %q)\n", tg.Value, lc.FileDir)
		}
	}
	return b.String()
}
