package tcpwrap

import (
	"fmt"
	"os/user"
	"strings"
)

// Option flags, as in libwrap's option table.
const (
	needArg   = 1 << 1 // the option needs a value
	useLast   = 1 << 2 // the option must be the rule's last
	optArg    = 1 << 3 // the option may have a value
	expandArg = 1 << 4 // the value gets %<letter> expansion
)

// percentBuf is the size of the buffer percent_x expands into (BUFSIZ).
const percentBuf = 8192

// whitespace is what libwrap skips between an option's name and value.
const whitespace = " \t\r\n"

type option struct {
	name  string
	flags int
	run   func(c *checker, value string, res *tableResult) (decided bool)
}

// options is libwrap's option table, in its order.
var options = []option{
	{"user", needArg, (*checker).userOption},
	{"group", needArg, (*checker).groupOption},
	{"umask", needArg, (*checker).umaskOption},
	{"linger", needArg, (*checker).lingerOption},
	{"keepalive", 0, ignoreOption},
	{"aclexec", needArg | expandArg, execOption("aclexec")},
	{"spawn", needArg | expandArg, execOption("spawn")},
	{"twist", needArg | expandArg | useLast, execOption("twist")},
	{"rfc931", optArg, (*checker).rfc931Option},
	{"setenv", needArg | expandArg, (*checker).setenvOption},
	{"nice", optArg, (*checker).niceOption},
	{"severity", needArg, (*checker).severityOption},
	{"allow", useLast, (*checker).allowOption},
	{"deny", useLast, (*checker).denyOption},
	{"banners", needArg, ignoreOption},
}

// processOptions is process_options: it runs the options of the rule that
// matched, in order, until one decides (allow, deny, or an error, which
// denies). See the package documentation for what each option does here.
func (c *checker) processOptions(text string, res *tableResult) {
	fields := getFields(text)
	for i, field := range fields {
		last := i == len(fields)-1
		cur := chopString(field)
		key, value, hasValue := splitOption(cur)
		if key == "" {
			c.optionError(res, "missing option name")
			return
		}
		var op *option
		for k := range options {
			if equalFold(options[k].name, key) {
				op = &options[k]
				break
			}
		}
		switch {
		case op == nil:
			c.optionError(res, fmt.Sprintf("bad option name: %q", key))
			return
		case !hasValue && op.flags&needArg != 0:
			c.optionError(res, fmt.Sprintf("option %q requires value", key))
			return
		case hasValue && op.flags&(needArg|optArg) == 0:
			c.optionError(res, fmt.Sprintf("option %q requires no value", key))
			return
		case !last && op.flags&useLast != 0:
			c.optionError(res, fmt.Sprintf("option %q must be at end", key))
			return
		}
		if hasValue && op.flags&expandArg != 0 {
			v, ok := c.percentX(value)
			if !ok {
				// libwrap logs and exits: the client gets nothing.
				c.optionError(res, fmt.Sprintf("option %q: %% expansion too long (libwrap would exit)", key))
				return
			}
			value = chopString(v)
		}
		if op.run(c, value, res) {
			return
		}
	}
}

// decide ends option processing with a verdict for the rule.
func decide(res *tableResult, allow bool, why string) bool {
	res.kind = tableJump
	res.allow = allow
	res.reason = fmt.Sprintf("%s by %s:%d", why, res.file, res.line)
	return true
}

// optionError is tcpd_jump: an error in an option denies service.
func (c *checker) optionError(res *tableResult, msg string) bool {
	res.kind = tableJump
	res.allow = false
	res.reason = fmt.Sprintf("denied by %s:%d: %s", res.file, res.line, msg)
	return true
}

// getFields splits the option text at ':' the way libwrap's get_field
// does: "\:" stands for a literal ':' and no other backslash is special.
func getFields(s string) []string {
	var fields []string
	for s != "" {
		var b []byte
		i := 0
		for i < len(s) {
			ch := s[i]
			if ch == ':' {
				i++
				break
			}
			if ch == '\\' && i+1 < len(s) && s[i+1] == ':' {
				i++
			}
			b = append(b, s[i])
			i++
		}
		fields = append(fields, string(b))
		s = s[i:]
	}
	return fields
}

// chopString is chop_string: it strips leading and trailing isspace bytes.
func chopString(s string) string {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

// splitOption separates "name value", "name = value" or "name=value"
// (exactly one '=' is dropped, for backward compatibility).
func splitOption(s string) (key, value string, hasValue bool) {
	i := strcspn(s, "="+whitespace)
	key, rest := s[:i], s[i:]
	if rest != "" {
		if rest[0] != '=' {
			rest = rest[1:]
			rest = rest[strspn(rest, whitespace):]
		}
		if rest != "" && rest[0] == '=' {
			rest = rest[1:]
			rest = rest[strspn(rest, whitespace):]
		}
	}
	return key, rest, rest != ""
}

// okChars are the bytes a %<letter> expansion may contain; others become
// '_', so a host name cannot smuggle shell syntax into a value.
const okChars = "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// percentX is percent_x: it expands %a %A %c %d %h %H %n %N %p %r %R %s %u
// and %%; an unknown letter expands to nothing. It reports false when the
// result would not fit libwrap's buffer.
func (c *checker) percentX(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); {
		var exp string
		if s[i] == '%' && i+1 < len(s) {
			exp = c.expand(s[i+1])
			i += 2
			exp = sanitize(exp)
		} else {
			exp = s[i : i+1]
			i++
		}
		if b.Len()+len(exp) >= percentBuf-1 {
			return "", false
		}
		b.WriteString(exp)
	}
	return b.String(), true
}

func (c *checker) expand(letter byte) string {
	switch letter {
	case 'a':
		return c.client.hostaddr()
	case 'A':
		return c.server.hostaddr()
	case 'c':
		return c.evalClient()
	case 'd':
		return c.daemon
	case 'h':
		return c.client.hostinfo()
	case 'H':
		return c.server.hostinfo()
	case 'n':
		return c.client.hostname()
	case 'N':
		return c.server.hostname()
	case 'p':
		return evalPid()
	case 'r':
		return c.client.evalPort()
	case 'R':
		return c.server.evalPort()
	case 's':
		return c.evalServer()
	case 'u':
		return c.user
	case '%':
		return "%"
	}
	return "" // libwrap warns: "unrecognized %<letter>"
}

func sanitize(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if strings.IndexByte(okChars, ch) < 0 {
			b[i] = '_'
		}
	}
	return string(b)
}

// ignoreOption accepts keepalive and banners and does nothing: the
// launcher owns the socket, and a banner would break the SMTP greeting.
func ignoreOption(*checker, string, *tableResult) bool { return false }

// execOption refuses spawn, twist and aclexec: a mail-owned process runs
// no commands from rule files. libwrap does the same with an option it
// does not know, so the rule fails closed.
func execOption(name string) func(*checker, string, *tableResult) bool {
	return func(c *checker, _ string, res *tableResult) bool {
		return c.optionError(res, fmt.Sprintf("option %s is not executed by smtp-bs; failing closed", name))
	}
}

func (c *checker) allowOption(_ string, res *tableResult) bool {
	return decide(res, true, "allowed (allow option)")
}

func (c *checker) denyOption(_ string, res *tableResult) bool {
	return decide(res, false, "denied (deny option)")
}

// setenvOption records "setenv NAME VALUE" (VALUE may be empty or contain
// blanks). A name glibc's setenv refuses (one with '=') denies, as libwrap
// then reports a "memory allocation failure".
func (c *checker) setenvOption(value string, res *tableResult) bool {
	name, val := value, ""
	if i := strcspn(value, whitespace); i < len(value) {
		name, val = value[:i], value[i+1:]
	}
	name, val = chopString(name), chopString(val)
	if name == "" || strings.Contains(name, "=") {
		return c.optionError(res, fmt.Sprintf("setenv %q: bad variable name", name))
	}
	if res.env == nil {
		res.env = map[string]string{}
	}
	res.env[name] = val
	return false
}

// syslogCode is a syslog(3) name and its number. The tables are slices,
// not maps: a map literal is built by code at every process start, and
// smtp-bs starts once per connection.
type syslogCode struct {
	name string
	code int
}

var (
	syslogLevels = []syslogCode{{"emerg", 0}, {"alert", 1}, {"crit", 2}, {"err", 3},
		{"warning", 4}, {"notice", 5}, {"info", 6}, {"debug", 7}}
	syslogFacilities = []syslogCode{{"kern", 0}, {"user", 8}, {"mail", 16}, {"daemon", 24},
		{"auth", 32}, {"lpr", 48}, {"news", 56}, {"uucp", 64}, {"cron", 72},
		{"local0", 128}, {"local1", 136}, {"local2", 144}, {"local3", 152},
		{"local4", 160}, {"local5", 168}, {"local6", 176}, {"local7", 184}}
)

func syslogName(table []syslogCode, name string) (int, bool) {
	for _, c := range table {
		if equalFold(c.name, name) {
			return c.code, true
		}
	}
	return 0, false
}

// severityOption records "severity [facility.]level"; an unknown name
// denies.
func (c *checker) severityOption(value string, res *tableResult) bool {
	var sev int
	if fac, level, ok := splitAt(value, '.'); ok {
		f, ok1 := syslogName(syslogFacilities, fac)
		if !ok1 {
			return c.optionError(res, fmt.Sprintf("bad syslog facility or severity: %q", fac))
		}
		l, ok2 := syslogName(syslogLevels, level)
		if !ok2 {
			return c.optionError(res, fmt.Sprintf("bad syslog facility or severity: %q", level))
		}
		sev = f | l
	} else {
		l, ok := syslogName(syslogLevels, value)
		if !ok {
			return c.optionError(res, fmt.Sprintf("bad syslog facility or severity: %q", value))
		}
		sev = l
	}
	res.severity = value
	res.sevValue = sev
	return false
}

// userOption checks "user NAME[.GROUP]": the names must exist (libwrap
// denies otherwise), but smtp-bs does not switch to them: it already runs
// as its own unprivileged user.
func (c *checker) userOption(value string, res *tableResult) bool {
	name, group, hasGroup := splitAt(value, '.')
	if hasGroup {
		if c.groupOption(group, res) {
			return true
		}
	}
	if _, err := user.Lookup(name); err != nil {
		return c.optionError(res, fmt.Sprintf("unknown user: %q", name))
	}
	return false
}

// groupOption checks "group NAME" exists; it is not applied either.
func (c *checker) groupOption(value string, res *tableResult) bool {
	if _, err := user.LookupGroup(value); err != nil {
		return c.optionError(res, fmt.Sprintf("unknown group: %q", value))
	}
	return false
}

// umaskOption checks "umask OCTAL" (at most 0777); it is not applied:
// smtp-bs sets its own umask of 077.
func (c *checker) umaskOption(value string, res *tableResult) bool {
	if n, v := scanNumber(value, 8, false); n != 1 || v > 0777 {
		return c.optionError(res, fmt.Sprintf("bad umask value: %q", value))
	}
	return false
}

// lingerOption checks "linger SECONDS"; it is not applied (the launcher
// owns the socket options).
func (c *checker) lingerOption(value string, res *tableResult) bool {
	if n, v := scanNumber(value, 10, true); n != 1 || int32(v) < 0 {
		return c.optionError(res, fmt.Sprintf("bad linger value: %q", value))
	}
	return false
}

// rfc931Option checks "rfc931 [TIMEOUT]"; no ident lookup is made, so the
// user stays unknown.
func (c *checker) rfc931Option(value string, res *tableResult) bool {
	if value != "" {
		if n, v := scanNumber(value, 10, true); n != 1 || int32(v) <= 0 {
			return c.optionError(res, fmt.Sprintf("bad rfc931 timeout: %q", value))
		}
	}
	return false
}

// niceOption checks "nice [N]"; it is not applied.
func (c *checker) niceOption(value string, res *tableResult) bool {
	if value != "" {
		if n, _ := scanNumber(value, 10, true); n != 1 {
			return c.optionError(res, fmt.Sprintf("bad nice value: %q", value))
		}
	}
	return false
}
