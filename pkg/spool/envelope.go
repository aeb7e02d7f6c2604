package spool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// EnvelopeVersion is the on-disk format version this code writes: 2 is an
// envelope at the end of the message's one file (trailer.go); 1, still
// read, was an envelope in queue/ID with the content in data/ID. A file of
// a newer version is moved aside, not guessed at.
const EnvelopeVersion = 2

const envelopeMagic = "smtp-bs-envelope"

// maxEnvelope bounds what the reader accepts, so a damaged file cannot make
// qrun allocate without limit.
const maxEnvelope = 4 << 20

// Envelope is what SMTP said about a message, beside its content.
type Envelope struct {
	ID       string
	Received time.Time
	From     string   // "" is the null reverse-path <>
	Rcpts    []string // in the order given
	Peer     string   // client address, or "local"
	Helo     string
	Protocol string // ESMTP, ESMTPS, UTF8SMTP, ...
	Size     int64  // bytes of content
	Body     string // 7BIT, 8BITMIME or BINARYMIME as the client declared
	UTF8     bool   // SMTPUTF8 was given
	// RequireTLS: the client asked for REQUIRETLS (RFC 8689): deliver
	// only over verified TLS. Written only when true, so files without it
	// stay readable by every version-1 reader.
	RequireTLS bool
	// DSN (RFC 3461), each written only when given: Ret is MAIL's RET=
	// (FULL or HDRS), EnvID its ENVID= (decoded), and DSN a recipient's
	// NOTIFY= and ORCPT=, by recipient address.
	Ret   string
	EnvID string
	DSN   map[string]RcptDSN
}

// RcptDSN is what RCPT said about DSNs for one recipient.
type RcptDSN struct {
	Notify []string // NEVER, or some of SUCCESS, FAILURE, DELAY; nil: unset
	ORcpt  string   // "type;address", as decoded: "rfc822;a@example.org"
}

// Wants says whether the recipient asked for a DSN of this kind
// ("SUCCESS", "FAILURE" or "DELAY"): with NOTIFY unset, failures and
// delays are reported (RFC 3461 4.1), successes are not.
func (e *Envelope) Wants(rcpt, kind string) bool {
	d, ok := e.DSN[rcpt]
	if !ok || len(d.Notify) == 0 {
		return kind != "SUCCESS"
	}
	for _, n := range d.Notify {
		if n == kind {
			return true
		}
	}
	return false
}

// ErrCorrupt wraps every parse failure of a spool file.
var ErrCorrupt = errors.New("spool: damaged file")

// ErrFutureVersion marks a file written by a newer smtp-bs.
var ErrFutureVersion = errors.New("spool: file from a newer format version")

func checkValue(key, v string) error {
	if strings.ContainsAny(v, "\r\n\x00") {
		return fmt.Errorf("spool: envelope %s holds a line break", key)
	}
	return nil
}

// Marshal renders the envelope in its versioned text form.
func (e *Envelope) Marshal() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %d\n", envelopeMagic, EnvelopeVersion)
	kv := func(k, v string) error {
		if err := checkValue(k, v); err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %s\n", k, v)
		return nil
	}
	utf8 := "0"
	if e.UTF8 {
		utf8 = "1"
	}
	for _, f := range [][2]string{
		{"id", e.ID},
		{"received", e.Received.UTC().Format(time.RFC3339Nano)},
		{"from", "<" + e.From + ">"},
		{"peer", e.Peer},
		{"helo", e.Helo},
		{"protocol", e.Protocol},
		{"size", strconv.FormatInt(e.Size, 10)},
		{"body", e.Body},
		{"smtputf8", utf8},
	} {
		if err := kv(f[0], f[1]); err != nil {
			return nil, err
		}
	}
	if e.RequireTLS {
		b.WriteString("requiretls 1\n")
	}
	for _, f := range [][2]string{{"ret", e.Ret}, {"envid", e.EnvID}} {
		if f[1] != "" {
			if err := kv(f[0], f[1]); err != nil {
				return nil, err
			}
		}
	}
	for _, r := range e.Rcpts {
		if err := kv("rcpt", "<"+r+">"); err != nil {
			return nil, err
		}
		d, ok := e.DSN[r]
		if !ok {
			continue
		}
		// After its rcpt line: "dsn NOTIFY-LIST ORCPT", "-" for unset.
		notify, orcpt := strings.Join(d.Notify, ","), d.ORcpt
		if notify == "" {
			notify = "-"
		}
		if orcpt == "" {
			orcpt = "-"
		}
		for _, n := range d.Notify {
			switch n {
			case "NEVER", "SUCCESS", "FAILURE", "DELAY":
			default:
				return nil, fmt.Errorf("spool: bad NOTIFY %q", n)
			}
		}
		if err := kv("dsn", notify+" "+orcpt); err != nil {
			return nil, err
		}
	}
	b.WriteString("end\n")
	return b.Bytes(), nil
}

// ParseEnvelope reads an envelope. Any deviation from the format (missing
// end line, unknown key, bad number) is ErrCorrupt: a truncated or garbled
// file must be noticed, not half-used.
func ParseEnvelope(r io.Reader) (*Envelope, error) {
	e, _, err := parseEnvelope(r)
	return e, err
}

// parseEnvelope is ParseEnvelope that also says which version the file
// declared.
func parseEnvelope(r io.Reader) (*Envelope, int, error) {
	version := 0
	corrupt := func(format string, a ...any) (*Envelope, int, error) {
		return nil, 0, fmt.Errorf("%w: envelope: %s", ErrCorrupt, fmt.Sprintf(format, a...))
	}
	br := bufio.NewReader(io.LimitReader(r, maxEnvelope+1))
	e := &Envelope{}
	var seen = map[string]bool{}
	first, ended := true, false
	total := 0
	for {
		line, err := br.ReadString('\n')
		total += len(line)
		if total > maxEnvelope {
			return corrupt("larger than %d bytes", maxEnvelope)
		}
		if err == io.EOF {
			if line != "" {
				return corrupt("last line has no newline (truncated)")
			}
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("spool: read envelope: %w", err)
		}
		if ended {
			return corrupt("data after end line")
		}
		line = strings.TrimSuffix(line, "\n")
		if strings.ContainsAny(line, "\r\x00") {
			// Marshal never writes them; qrun puts these values on SMTP
			// command lines, where a CR could start a command of its own.
			return corrupt("CR or NUL in a line")
		}
		key, val, _ := strings.Cut(line, " ")
		if first {
			first = false
			if key != envelopeMagic {
				return corrupt("not an smtp-bs envelope")
			}
			v, err := strconv.Atoi(val)
			if err != nil || v < 1 {
				return corrupt("bad version %q", val)
			}
			if v > EnvelopeVersion {
				return nil, 0, fmt.Errorf("%w: envelope version %d (this qrun reads up to %d)", ErrFutureVersion, v, EnvelopeVersion)
			}
			version = v
			continue
		}
		if key != "rcpt" && key != "end" && key != "dsn" {
			if seen[key] {
				return corrupt("key %q twice", key)
			}
			seen[key] = true
		}
		switch key {
		case "id":
			e.ID = val
		case "received":
			t, err := time.Parse(time.RFC3339Nano, val)
			if err != nil {
				return corrupt("bad received time %q", val)
			}
			e.Received = t
		case "from":
			if !strings.HasPrefix(val, "<") || !strings.HasSuffix(val, ">") {
				return corrupt("bad from %q", val)
			}
			e.From = val[1 : len(val)-1]
		case "rcpt":
			if len(val) < 3 || !strings.HasPrefix(val, "<") || !strings.HasSuffix(val, ">") {
				return corrupt("bad rcpt %q", val)
			}
			e.Rcpts = append(e.Rcpts, val[1:len(val)-1])
		case "peer":
			e.Peer = val
		case "helo":
			e.Helo = val
		case "protocol":
			e.Protocol = val
		case "size":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				return corrupt("bad size %q", val)
			}
			e.Size = n
		case "body":
			e.Body = val
		case "smtputf8":
			e.UTF8 = val == "1"
		case "requiretls":
			if val != "1" {
				return corrupt("bad requiretls %q", val)
			}
			e.RequireTLS = true
		case "ret":
			if val != "FULL" && val != "HDRS" {
				return corrupt("bad ret %q", val)
			}
			e.Ret = val
		case "envid":
			e.EnvID = val
		case "dsn":
			notify, orcpt, ok := strings.Cut(val, " ")
			if !ok || len(e.Rcpts) == 0 || notify == "" || orcpt == "" {
				return corrupt("bad dsn %q", val)
			}
			d := RcptDSN{}
			if notify != "-" {
				d.Notify = strings.Split(notify, ",")
				for _, n := range d.Notify {
					switch n {
					case "NEVER", "SUCCESS", "FAILURE", "DELAY":
					default:
						return corrupt("bad dsn %q", val)
					}
				}
			}
			if orcpt != "-" {
				d.ORcpt = orcpt
			}
			if e.DSN == nil {
				e.DSN = map[string]RcptDSN{}
			}
			e.DSN[e.Rcpts[len(e.Rcpts)-1]] = d
		case "end":
			ended = true
		default:
			return corrupt("unknown key %q", key)
		}
	}
	switch {
	case first:
		return corrupt("empty file")
	case !ended:
		return corrupt("no end line (truncated)")
	case !ValidID(e.ID):
		return corrupt("bad id %q", e.ID)
	case !seen["received"] || !seen["from"] || !seen["size"]:
		return corrupt("missing received, from or size")
	case len(e.Rcpts) == 0:
		return corrupt("no recipients")
	}
	return e, version, nil
}
