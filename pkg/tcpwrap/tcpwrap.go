package tcpwrap

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// Default rule files, as compiled into Debian's libwrap.
const (
	DefaultAllowFile = "/etc/hosts.allow"
	DefaultDenyFile  = "/etc/hosts.deny"
)

// DefaultLookupTimeout bounds all name lookups of one Check together when
// Options.LookupTimeout is zero.
const DefaultLookupTimeout = 2 * time.Second

// Client describes the connecting peer.
type Client struct {
	// Addr is the peer address. A v4-mapped IPv6 address is treated as
	// the IPv4 address it carries. The zero Addr means "no address",
	// which libwrap calls "unknown".
	Addr netip.Addr
	// Port is the peer's port, used only by %r in setenv values.
	Port uint16
	// User is the client user name, usually "" (unknown): smtp-bs never
	// does ident (RFC 931) lookups.
	User string
	// Local is the address and port the client connected to. It serves
	// daemon@host patterns and port-number daemon patterns ("25: ...");
	// when it is not valid those patterns see an unknown server, as
	// libwrap does without server endpoint information.
	Local netip.AddrPort
}

// Resolver looks names up. *net.Resolver satisfies it (and CNAMEResolver).
type Resolver interface {
	LookupAddr(ctx context.Context, addr string) ([]string, error)
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// CNAMEResolver is an optional extension of Resolver. When the Resolver
// has it, the name a reverse lookup returns must also be the canonical name
// of its forward lookup, as libwrap demands (it compares getaddrinfo's
// AI_CANONNAME answer); without it that part of the check is skipped.
type CNAMEResolver interface {
	LookupCNAME(ctx context.Context, host string) (string, error)
}

// Options configure a Check.
type Options struct {
	// AllowFile and DenyFile are the rule files; "" means
	// DefaultAllowFile and DefaultDenyFile.
	AllowFile, DenyFile string
	// Resolver does name lookups; nil means net.DefaultResolver.
	Resolver Resolver
	// LookupTimeout bounds all name lookups of one Check together; zero
	// means DefaultLookupTimeout. A lookup that times out has failed, as
	// a timed-out lookup does in libwrap.
	LookupTimeout time.Duration

	// libwrapLookups makes name lookups happen exactly where libwrap's
	// happen, for the differential test; see hostMatch.
	libwrapLookups bool
}

// Verdict is the outcome of a Check.
type Verdict struct {
	Allow bool
	// File is the rule file whose line decided, "" when no rule matched
	// (the default is to allow).
	File string
	// Line is the 1-based number of the first physical line of the
	// deciding rule (a rule continued with backslashes spans several).
	Line int
	// Env holds the setenv options of the deciding rule (the last one
	// wins for a name), e.g. RELAYCLIENT. Nil when the verdict is deny.
	Env map[string]string
	// Severity is the value of the deciding rule's last severity option
	// ("mail.info", "notice"), "" when it has none.
	Severity string
	// Reason says in words why, e.g. "denied by /etc/hosts.deny:3".
	Reason string
	// Malformed lists the rules read on the way to the verdict that
	// libwrap would skip or misread (Lint checks whole files).
	Malformed []Problem

	severity int // syslog priority value of Severity, for tests
}

// Check reads the rule files and decides whether client may use daemon,
// as Debian's libwrap hosts_access() would. daemon is the name rules are
// written for (tcpd uses the program's name, argv[0]'s basename).
//
// The error is non-nil only when ctx ends before a verdict is reached; the
// Verdict then denies. Unreadable files, bad rules and failed lookups are
// not errors: they are part of the verdict, exactly as in libwrap.
func Check(ctx context.Context, daemon string, c Client, o Options) (Verdict, error) {
	if o.AllowFile == "" {
		o.AllowFile = DefaultAllowFile
	}
	if o.DenyFile == "" {
		o.DenyFile = DefaultDenyFile
	}
	if o.LookupTimeout <= 0 {
		o.LookupTimeout = DefaultLookupTimeout
	}
	ck := newChecker(ctx, daemon, c, o)
	defer ck.close()
	v := ck.hostsAccess()
	v.Malformed = ck.malformed
	if err := ctx.Err(); err != nil {
		return Verdict{Reason: "check interrupted"}, fmt.Errorf("tcpwrap: check for %s: %w", daemon, err)
	}
	return v, nil
}

// truncate cuts s as strncpy into libwrap's 128-byte fields does.
func truncate(s string, n int) string {
	s = cstr([]byte(s))
	if len(s) > n {
		return s[:n]
	}
	return s
}
