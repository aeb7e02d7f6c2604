package submit

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Options are the sendmail command line, parsed.
type Options struct {
	ExtractRcpts bool   // -t: recipients from To:, Cc: and Bcc:, added to the arguments
	IgnoreDots   bool   // -i, -oi, -O IgnoreDots: a lone "." line does not end the input
	Sender       string // -f or -r; "" with SenderSet is the null sender <>
	SenderSet    bool
	FullName     string // -F: the display name of an added From: header
	FullNameSet  bool
	ConfigPath   string // -C
	ConfigSet    bool
	Verbose      bool     // -v: the SMTP dialogue goes to stderr
	NewAliases   bool     // -bi, -I, or invoked as newaliases
	Help         bool     // --help, or -h alone (sendmail's -h takes a hop count)
	Rcpts        []string // the arguments after the options, as given
}

// Options that take a value, as sendmail 8's getopt string has them. Only
// C, F, f, r, b, o and O mean anything here; the others are accepted and
// ignored, so that scripts written for sendmail keep working:
//
//	-A c|m  submit.cf or sendmail.cf     -B type  body type (8BITMIME is used when offered)
//	-D file debug log                    -d list  debug flags
//	-e x    error mode (old)             -h n     hop count
//	-L tag  syslog tag                   -M xval  macro
//	-N dsn  DSN NOTIFY                   -p proto protocol and host
//	-R ret  DSN RET                      -V id    DSN ENVID
//	-X file traffic log (not written: it could be anyone's file)
const withValue = "ABbCDdeFfhLMNOopRrVX"

// Options without a value that are accepted and ignored: -c (hold
// connections), -G (relay), -m (me too), -n (no aliasing), -s (save From
// lines), -T (old queue timeout), -U (initial submission).
const ignoredFlags = "cGmnsTU"

// Parse reads a sendmail command line. prog is argv[0]: invoked as
// "newaliases" it means -bi, as "mailq" -bp. Options stop at "--" or at
// the first argument that does not start with "-" (POSIX getopt): the rest
// are recipients, so an address can never be taken for an option.
func Parse(prog string, args []string) (*Options, error) {
	o := &Options{}
	switch filepath.Base(prog) {
	case "mailq":
		return nil, refusedMode("p")
	case "newaliases":
		o.NewAliases = true
	}
	// --help is no sendmail option, and -h takes a value (the hop count):
	// either alone asks for help rather than for an error.
	if len(args) == 1 && (args[0] == "--help" || args[0] == "-h") {
		o.Help = true
		return o, nil
	}
	i := 0
args:
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch {
			case c == 'q' || c == 'Q':
				// -q takes an optional value (-q30m, -qIqueueid): refuse
				// before reading anything else.
				return nil, refusedMode(string(c))
			case strings.IndexByte(withValue, c) >= 0:
				v := a[j+1:]
				if v == "" {
					if i+1 >= len(args) {
						return nil, usageErrorf("option -%c needs a value", c)
					}
					i++
					v = args[i]
				}
				if err := o.set(c, v); err != nil {
					return nil, err
				}
				continue args
			case c == 't':
				o.ExtractRcpts = true
			case c == 'i':
				o.IgnoreDots = true
			case c == 'v':
				o.Verbose = true
			case c == 'I':
				o.NewAliases = true
			case strings.IndexByte(ignoredFlags, c) >= 0:
			default:
				return nil, usageErrorf("unknown option -%c", c)
			}
		}
	}
	o.Rcpts = args[i:]
	return o, nil
}

func (o *Options) set(c byte, v string) error {
	switch c {
	case 'C':
		if v == "" {
			return usageErrorf("-C needs a file name")
		}
		o.ConfigPath, o.ConfigSet = v, true
	case 'F':
		o.FullName, o.FullNameSet = v, true
	case 'f', 'r':
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, "<") && strings.HasSuffix(v, ">") {
			v = strings.TrimSpace(v[1 : len(v)-1])
		}
		if strings.ContainsAny(v, "\r\n") {
			return usageErrorf("-%c: the sender address holds a line break", c)
		}
		o.Sender, o.SenderSet = v, true
	case 'b':
		switch v {
		case "m":
		case "i":
			o.NewAliases = true
		default:
			return refusedMode("b" + v)
		}
	case 'o':
		// -oi, -oitrue, -oiFalse; every other -oX is ignored (-odi, -oem ...).
		if v != "" && v[0] == 'i' {
			b, ok := parseBool(v[1:])
			if !ok {
				return usageErrorf("-oi: %q is not true or false", v[1:])
			}
			o.IgnoreDots = b
		}
	case 'O':
		name, val, _ := strings.Cut(v, "=")
		if strings.EqualFold(strings.TrimSpace(name), "IgnoreDots") {
			b, ok := parseBool(strings.TrimSpace(val))
			if !ok {
				return usageErrorf("-O IgnoreDots: %q is not true or false", val)
			}
			o.IgnoreDots = b
		}
	}
	return nil
}

// parseBool reads a sendmail option value: empty means true.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "", "t", "true", "y", "yes", "1":
		return true, true
	case "f", "false", "n", "no", "0":
		return false, true
	}
	return false, false
}

// refusedMode explains where the sendmail mode's job went in smtp-bs.
func refusedMode(m string) error {
	var why string
	switch m {
	case "bs":
		why = "-bs is not supported: to speak SMTP, connect to the local mail system (127.0.0.1:25, served by smtp-bs), or run smtp-bs itself as the mail user"
	case "bp", "p":
		why = "-bp (mailq) is not supported: run qrun -list (as root or the mail user) to see the queue"
	case "q", "Q":
		why = "-q is not supported: qrun delivers the queue from cron or its systemd timer; run qrun -flush to make every message due now, or qrun -once for a pass"
	case "bd":
		why = "-bd is not supported: smtp-bs is started for each connection by a launcher (systemd, xinetd, tcpserver), never as a daemon"
	default:
		why = fmt.Sprintf("-%s is not supported: only -bm (the default, send a message) and -bi (nothing to do) are", m)
	}
	return &Error{Code: ExUsage, Msg: why}
}

func usageErrorf(format string, a ...any) error {
	return &Error{Code: ExUsage, Msg: fmt.Sprintf(format, a...) + "\n" + Usage}
}

// Usage is the one-line summary printed with usage errors.
const Usage = `usage: sendmail [-t] [-i] [-f sender] [-F "Full Name"] [-C config] [-v] [--] [recipient ...]`
