// Package tcpwrap decides whether a client may connect, from the rules in
// /etc/hosts.allow and /etc/hosts.deny, the way Debian's libwrap 7.6.q
// (tcpd, hosts_access(5), hosts_options(5)) decides it: in pure Go, without
// cgo and without libwrap installed.
//
// The code is a port of what Debian's libwrap.so.0 actually does (its
// patches for IPv6, CIDR masks, pattern files, port numbers and aclexec
// included), not of the manual pages, which leave much unsaid. The tests
// hold it to that: every table case is also put to libwrap's
// hosts_access(), and a differential test compares thousands of random rule
// files, clients and name services with libwrap, allowing no disagreement.
//
// # The language, with the quirks that decide verdicts
//
// The allow file is read first, then the deny file; the first rule whose
// daemon list and client list both match decides (after its options run),
// and when none does the client is allowed. A missing file is empty. A file
// that cannot be read (other than missing) is skipped when it is the allow
// file and denies everyone when it is the deny file.
//
// A rule is "daemons : clients [: options]". Lines ending in a backslash
// are joined to the next with nothing in between ("10.0.0.1\" then
// "192.0.2.1" makes one word). Only a '#' in the first column starts a
// comment, and a comment can be continued too. A logical line longer than
// 2047 bytes, or a last line without its newline, makes libwrap give up on
// the rest of that file and count it as unreadable: a deny file whose last
// line lacks its newline denies everyone the allow file did not admit.
// Fields are split at the first ':' outside square brackets, so an
// unbracketed IPv6 address in a client list ends the list at its first
// colon and turns the rest into options (usually an error, which denies).
//
// List elements are separated by blanks or commas. "a EXCEPT b" matches
// what a matches and b does not, and nests to the right: "a EXCEPT b
// EXCEPT c" is "a EXCEPT (b EXCEPT c)". Matching ignores ASCII case.
//
// Patterns, in the order they are tried:
//   - a word with '*' or '?' is a wildcard over the whole name, address,
//     daemon or user ("a**" needs a character after "a");
//   - ".suffix" matches the end of a name, or of an address (".2.1");
//   - ALL matches anything; KNOWN a known name and address (or user);
//   - "prefix." matches the start of an address, or of a name;
//   - "[v6addr]" compares IPv6 addresses;
//   - anything else is compared as text.
//
// Host patterns add LOCAL (a believed name without a dot), "@netgroup",
// "/path" (a file of host patterns separated by white space, commas
// included in a word), "n.n.n.n/m.m.m.m", "n.n.n.n/len" (1..32: /0 and
// 255.255.255.255 are not valid masks, and a net with host bits set never
// matches) and "[v6net]/len" (0..128; host bits in the net are ignored).
// UNKNOWN and PARANOID are not keywords at all: a name that could not be
// looked up is "unknown", one that failed the checks below is "paranoid",
// and those patterns match that text. A text pattern is tried on the name
// only if it holds a character other than digits, dots and slashes.
// "user@host" also matches the client user; "daemon@host" matches the
// address the client connected to (Client.Local); a daemon pattern that is
// a number up to 65535 matches that address's port.
//
// # Names
//
// A name is looked up only when a pattern needs it, at most once per check,
// and all lookups of one check share Options.LookupTimeout (2 s by
// default): a rule set of addresses and networks never waits on DNS. The
// first name of the reverse lookup is believed only if it does not read as
// an address, it is its own canonical name (or it is "localhost"), and its
// forward lookup in the client's address family gives the client's address
// back; otherwise it becomes "paranoid". A failed or timed-out reverse
// lookup leaves "unknown". A v4-mapped IPv6 client is treated as the IPv4
// address it carries, for names as for patterns.
//
// # Options
//
// The options of the deciding rule run in order, as in libwrap; an unknown
// option, a missing or superfluous value, allow or deny or twist not last,
// or a bad value (an unknown severity, user or group, a umask above 0777, a
// negative linger...) denies the client, exactly as libwrap's error path
// does. What each option does here:
//   - allow, deny: decide, wherever the rule is.
//   - setenv NAME VALUE: recorded in Verdict.Env, after %-expansion (%a
//     %A %c %d %h %H %n %N %p %r %R %s %u %%).
//   - severity [facility.]level: recorded in Verdict.Severity.
//   - spawn, twist, aclexec: never executed: the rule denies, with a
//     Reason saying so (failing closed, as libwrap does with an option it
//     does not know).
//   - user, group: the names are checked to exist, not switched to.
//   - umask, nice, linger, keepalive, rfc931: values checked, not applied
//     (smtp-bs sets its own umask, the launcher owns the socket, and no
//     ident lookup is made: the user stays unknown).
//   - banners: ignored: a banner would break the SMTP greeting.
//
// # Where this differs from libwrap
//
// Besides the options above, on purpose:
//   - NIS netgroups never match (no NIS client here).
//   - A "/path" file that leads back to itself, or holds a word longer than
//     8191 bytes, makes libwrap crash; here the rule denies. FIFOs, devices
//     and sockets given as rule or pattern files are read as empty (libwrap
//     would block on a FIFO, loop or crash on /dev/zero).
//   - A bracketed IPv6 pattern never starts a name lookup (libwrap's always
//     fails on the name anyway); only %h, %c, %H and %s can tell, since they
//     show a name only once something has looked it up.
//   - A reverse name that reads as an address of the other family is
//     refused outright; libwrap refuses it when its forward lookup fails,
//     which it does unless /etc/hosts maps such a "name".
//   - For a v4-mapped client libwrap sees "::ffff:a.b.c.d": %a shows that,
//     and the mapped 255.255.255.255 escapes IPv4 masks. Here it is plain
//     IPv4, as smtp-bs's design wants.
//   - Without a CNAMEResolver the canonical-name check is skipped.
//   - Names come from Go's resolver, not glibc's. Go drops PTR answers that
//     are not valid host names (numeric ones among them): the client is then
//     "paranoid" (see lookupName), where libwrap could have believed a valid
//     first answer, or called a name glibc rejects "unknown". From
//     /etc/hosts, Go answers the canonical-name check from the first line
//     that holds the name whatever its family, where glibc looks at the
//     client's family only; glibc also names 127.0.0.1 from a "::1 localhost"
//     line, and keeps a name's trailing dot. These differences fail closed
//     except for a hosts.deny rule that names such a host.
//   - Line numbers count physical lines (libwrap's counter skips lines with
//     a NUL byte).
package tcpwrap
