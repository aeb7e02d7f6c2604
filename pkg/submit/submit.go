// Package submit is the sendmail-compatible local submission command: it
// takes a message from the host's own programs (cron, scripts, mail) on
// stdin and hands it to the local smtp-bs over SMTP, at [local] submit_to
// (default 127.0.0.1:25), the way sendmail 8.12's submission program
// relays to the local MTA.
//
// Invariants:
//
//   - It needs no privilege and has none: no setuid or setgid bit, no
//     spool access. The mail system checks what it is handed as it checks
//     any SMTP client on loopback.
//   - The whole message is read before the mail system is contacted, so a
//     slow writer (cron streams a job's output as it comes) never holds an
//     SMTP session open.
//   - What reaches the mail system is clean SMTP: CRLF line endings only,
//     no lone CR or LF and no NUL (smtp-bs refuses them), and From:, Date: and
//     Message-ID: headers present.
//   - Exit 0 means the mail system took the message for every recipient;
//     75 means it took it for nobody and the caller should keep it; the
//     other codes are listed in error.go.
package submit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"smtp-bs/pkg/address"
	"strings"
	"time"

	"smtp-bs/pkg/config"
)

// Settings are what the sendmail command takes from the smtp-bs config.
type Settings struct {
	// Hostname qualifies addresses without a domain and names the
	// Message-ID; "" when the config could not be read: then the name in
	// the mail system's greeting is used, which smtp-bs takes from the
	// same config.
	Hostname string
	SubmitTo string
	// MaxBytes bounds the message read from stdin: max_message_bytes
	// when the config was read, UnknownMaxBytes otherwise (then the mail
	// system's SIZE decides).
	MaxBytes int64
	// Sandbox is [sandbox] (the defaults when the config is unreadable):
	// the sendmail command confines itself too (pkg/sandbox).
	Sandbox config.Sandbox
}

// HeloName is the front's name in EHLO: the hostname of the config it
// was given, else the system's host name.
func (s Settings) HeloName() string {
	if s.Hostname != "" {
		return s.Hostname
	}
	h, _ := os.Hostname()
	return h
}

// UnknownMaxBytes bounds the input when the config cannot be read, so that
// a runaway writer cannot fill the disk with the temporary file.
const UnknownMaxBytes = 1 << 30

// LoadSettings reads the smtp-bs config at path (config.DefaultPath when
// ""). A config the user may not read (it is root:mail 0640, and users are
// not in group mail) and a missing one at the default path mean the
// defaults, silently. A config that was named with -C and is missing or
// unreadable, or one that is readable and wrong, is an error (exit 78):
// the user asked for that file.
func LoadSettings(path string, explicit bool) (Settings, error) {
	if path == "" {
		path = config.DefaultPath
	}
	def := config.Default()
	defaults := Settings{SubmitTo: def.Local.SubmitTo, MaxBytes: UnknownMaxBytes, Sandbox: def.Sandbox}
	src, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrPermission) && !explicit:
		return defaults, nil
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		return defaults, nil
	case err != nil:
		return Settings{}, &Error{Code: ExConfig, Msg: fmt.Sprintf("config: %v", err)}
	}
	c, err := config.Parse(path, src)
	if err != nil {
		return Settings{}, &Error{Code: ExConfig, Msg: err.Error()}
	}
	return Settings{Hostname: c.Hostname, SubmitTo: c.Local.SubmitTo, MaxBytes: c.SMTP.MaxMessageBytes, Sandbox: c.Sandbox}, nil
}

// Env is what Submit needs from the host; tests replace parts of it.
type Env struct {
	Settings
	// User returns the invoking user's login name and full name.
	User func() (login, fullName string, err error)
	// LocalName is our name in EHLO.
	LocalName string
	Now       func() time.Time
	Dial      Dialer
	Timeout   time.Duration
	Debug     io.Writer // -v: the SMTP dialogue
	TempDir   string
	TempFile  func() (*os.File, error) // see ReadOptions
}

// Submit reads the message from stdin and hands it to the mail system as
// the options say. It returns an *Error (with the exit code) on failure;
// when some recipients were refused and the others got the message, it
// returns both the result and an *Error.
func Submit(ctx context.Context, o *Options, env Env, stdin io.Reader) (*Result, error) {
	if env.User == nil {
		env.User = CurrentUser
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if len(o.Rcpts) == 0 && !o.ExtractRcpts {
		return nil, &Error{Code: ExUsage, Msg: "no recipients: give them as arguments, or use -t to take them from the To:, Cc: and Bcc: headers\n" + Usage}
	}
	var rcpts []string
	for _, a := range o.Rcpts {
		as, err := ParseList(a)
		if err != nil {
			return nil, &Error{Code: ExUsage, Msg: "recipient " + err.Error()}
		}
		rcpts = append(rcpts, as...)
	}
	msg, err := Read(stdin, ReadOptions{IgnoreDots: o.IgnoreDots, MaxBytes: env.MaxBytes, TempDir: env.TempDir, TempFile: env.TempFile})
	if err != nil {
		return nil, err
	}
	defer msg.Close()
	if o.ExtractRcpts {
		for _, h := range []string{"To", "Cc", "Bcc"} {
			for _, v := range msg.Get(h) {
				as, err := ParseList(v)
				if err != nil {
					return nil, &Error{Code: ExDataErr, Msg: fmt.Sprintf("the %s: header: %v; the message was not sent", h, err)}
				}
				rcpts = append(rcpts, as...)
			}
		}
	}
	// Bcc: is removed whether or not -t is given, as sendmail 8 does: it
	// is there to be hidden. So is Resent-Bcc: (RFC 5322 3.6.6).
	msg.Remove("Bcc")
	msg.Remove("Resent-Bcc")
	if len(rcpts) == 0 {
		return nil, &Error{Code: ExUsage, Msg: "no recipient addresses found in the To:, Cc: or Bcc: headers; the message was not sent"}
	}

	// Who we are is needed for the envelope sender unless -f gave it, and
	// for From: unless the message has one or -f gave a sender for it.
	var login, fullName string
	needUser := !o.SenderSet || (!msg.Has("From") && o.Sender == "")
	if needUser {
		if login, fullName, err = env.User(); err != nil {
			return nil, &Error{Code: ExNoUser, Msg: fmt.Sprintf("cannot tell who you are: %v; give the sender with -f", err)}
		}
	}

	c, err := Connect(ctx, env.SubmitTo, ConnectOptions{Dial: env.Dial, Timeout: env.Timeout, HeloName: env.LocalName, Debug: env.Debug})
	if err != nil {
		return nil, err
	}
	host := env.Hostname
	if host == "" {
		host = c.ServerName()
	}
	if host == "" {
		host = env.LocalName
	}
	if host == "" {
		host = "localhost"
	}

	// "From: root (Cron Daemon)", "To: bob": a reader elsewhere could
	// not answer them.
	QualifyFields(msg, host)

	own := Qualify(login, host)
	sender := own
	if o.SenderSet {
		sender = Qualify(o.Sender, host)
	}
	seen := map[string]bool{}
	var envRcpts []string
	utf8 := !address.IsASCII(sender)
	for _, r := range rcpts {
		r = Qualify(r, host)
		if seen[dedupKey(r)] {
			continue
		}
		seen[dedupKey(r)] = true
		envRcpts = append(envRcpts, r)
		if !address.IsASCII(r) {
			utf8 = true
		}
	}

	if !msg.Has("From") {
		from, name := own, fullName
		if o.SenderSet && sender != "" {
			from, name = sender, ""
		}
		if o.FullNameSet {
			name = o.FullName
		}
		msg.Add("From", FormatAddress(name, from))
	}
	now := env.Now()
	if !msg.Has("Date") {
		msg.Add("Date", now.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	}
	if !msg.Has("Message-ID") {
		msg.Add("Message-ID", messageID(now, host))
	}
	return c.Send(sender, envRcpts, msg, utf8)
}

// messageID makes a Message-ID unique without coordination: the time and
// 64 random bits.
func messageID(now time.Time, host string) string {
	var r [8]byte
	rand.Read(r[:])
	return fmt.Sprintf("<%s.%s@%s>", now.UTC().Format("20060102150405"), hex.EncodeToString(r[:]), host)
}

// CurrentUser is the invoking user from the password database (by real
// uid), with LOGNAME and USER only as a fallback when the uid has no
// entry. The full name is the GECOS field's first part, with & expanded to
// the capitalised login as sendmail does.
func CurrentUser() (login, fullName string, err error) {
	if u, err := user.LookupId(fmt.Sprint(os.Getuid())); err == nil && u.Username != "" {
		name := u.Name
		if i := strings.IndexByte(name, ','); i >= 0 {
			name = name[:i]
		}
		if strings.Contains(name, "&") {
			name = strings.ReplaceAll(name, "&", strings.ToUpper(u.Username[:1])+u.Username[1:])
		}
		return u.Username, name, nil
	}
	for _, k := range []string{"LOGNAME", "USER"} {
		if v := os.Getenv(k); v != "" && !strings.ContainsAny(v, " \t\r\n@<>()\",;:") {
			return v, "", nil
		}
	}
	return "", "", fmt.Errorf("uid %d has no entry in the password database, and LOGNAME and USER are unset", os.Getuid())
}
