package tcpwrap

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// tcase is one table test: rule files, a client, a name service, and the
// verdict Debian's libwrap gives (TestTableAgainstLibwrap checks every
// expectation against libwrap itself, except where libwrap would run a
// program).
type tcase struct {
	name   string
	allow  string            // hosts.allow content; "" means no file
	deny   string            // hosts.deny content; "" means no file
	files  map[string]string // extra files in the test directory ($DIR)
	daemon string            // default "smtp-bs"
	client string            // client address; "" means none
	local  string            // server "addr:port", optional
	user   string
	dns    []string // "ptr ADDR NAME" or "host NAME CANON ADDR"
	want   bool
	env    map[string]string // wanted Env when allowed
	sev    string            // wanted Severity
	line   int               // wanted Line, when not 0
	// noOracle says why libwrap cannot be asked (it would run a program)
	// and what it would do.
	noOracle string
}

var tableCases = []tcase{
	// Files and the basic order: allow file, deny file, allow.
	{name: "no files allow", client: "192.0.2.1", want: true},
	{name: "deny all", deny: "ALL: ALL\n", client: "192.0.2.1", want: false, line: 1},
	{name: "allow wins over deny", allow: "ALL: 192.0.2.1\n", deny: "ALL: ALL\n", client: "192.0.2.1", want: true},
	{name: "first matching line decides", deny: "# c\n\nsshd: ALL\nsmtp-bs: 192.0.2.1\nALL: ALL: allow\n", client: "192.0.2.1", want: false, line: 4},
	{name: "rules for other daemons ignored", deny: "sshd: ALL\n", client: "192.0.2.1", want: true},
	{name: "deny file is a directory", deny: "<dir>", client: "192.0.2.1", want: true},

	// Comments, blank lines, continuation, separators.
	{name: "comment only at column 1", deny: "# ALL: ALL\n", client: "192.0.2.1", want: true},
	{name: "indented hash is not a comment", deny: " # x, ALL: ALL\n", client: "192.0.2.1", want: false},
	{name: "blank lines with spaces", deny: " \t\r\n\nALL: ALL\n", client: "192.0.2.1", want: false, line: 3},
	{name: "continuation joins without space", deny: "ALL: 192.0.2.\\\n1\n", client: "192.0.2.1", want: false, line: 1},
	{name: "continuation joins words", deny: "ALL: 10.0.0.1\\\n192.0.2.1\n", client: "192.0.2.1", want: true},
	{name: "continuation with comma", deny: "ALL: 10.0.0.1,\\\n192.0.2.1\n", client: "192.0.2.1", want: false},
	{name: "continued rule reports its first line", deny: "\nsmtp-bs \\\n  : \\\n 192.0.2.1\n", client: "192.0.2.1", want: false, line: 2},
	{name: "continued comment swallows next line", deny: "# comment \\\nALL: ALL\n", client: "192.0.2.1", want: true},
	{name: "commas and blanks separate", deny: "sshd,smtp-bs : 10.0.0.1,,192.0.2.1\t10.0.0.2\n", client: "192.0.2.1", want: false},
	{name: "missing colon line skipped", deny: "ALL ALL\nALL: ALL\n", client: "192.0.2.1", want: false, line: 2},
	{name: "CRLF line endings", deny: "ALL: 192.0.2.1\r\n", client: "192.0.2.1", want: false},

	// The last line lacking its newline: libwrap gives up on the file.
	{name: "deny file without final newline denies everyone", deny: "sshd: 10.9.9.9", client: "192.0.2.1", want: false},
	{name: "allow file without final newline is skipped", allow: "ALL: 192.0.2.1", client: "192.0.2.1", want: true},
	{name: "allow file without final newline then deny file", allow: "ALL: 192.0.2.1", deny: "ALL: ALL\n", client: "192.0.2.1", want: false},
	{name: "earlier match wins over later missing newline", deny: "ALL: 192.0.2.1: allow\nsshd: x", client: "192.0.2.1", want: true},
	{name: "over-long line in deny file denies", deny: "sshd: " + strings.Repeat("x", 3000) + "\nALL: 10.0.0.1\n", client: "192.0.2.1", want: false},
	{name: "over-long continued line in deny file denies", deny: "sshd: " + strings.Repeat("a, \\\n", 800) + "\n", client: "192.0.2.1", want: false},
	{name: "line of 2047 bytes fits", deny: "ALL: " + strings.Repeat("1", 2041) + "\n", client: "192.0.2.1", want: true},
	{name: "line of 2048 bytes does not", deny: "ALL: " + strings.Repeat("1", 2042) + "\n", client: "192.0.2.1", want: false},
	{name: "NUL byte cuts the line", deny: "ALL: 10.0.0.1\x00, 192.0.2.1\nsshd: ALL\n", client: "192.0.2.1", want: true},

	// Daemon lists.
	{name: "daemon name case-insensitive", deny: "SMTP-BS: ALL\n", client: "192.0.2.1", want: false},
	{name: "daemon wildcard", deny: "smtp-*: ALL\n", client: "192.0.2.1", want: false},
	{name: "daemon ? wildcard", deny: "smtp?bs: ALL\n", client: "192.0.2.1", want: false},
	{name: "daemon suffix", daemon: "in.smtpd", deny: ".smtpd: ALL\n", client: "192.0.2.1", want: false},
	{name: "daemon EXCEPT", deny: "ALL EXCEPT smtp-bs: ALL\n", client: "192.0.2.1", want: true},
	{name: "daemon EXCEPT lowercase", deny: "ALL except smtp-bs: ALL\n", client: "192.0.2.1", want: true},
	{name: "daemon port pattern", deny: "25: ALL\n", client: "192.0.2.1", local: "192.0.2.25:25", want: false},
	{name: "daemon port pattern other port", deny: "25: ALL\n", client: "192.0.2.1", local: "192.0.2.25:587", want: true},
	{name: "daemon port without server info", deny: "25: ALL\n", client: "192.0.2.1", want: true},
	{name: "daemon port with plus sign", deny: "+25: ALL\n", client: "192.0.2.1", local: "192.0.2.25:25", want: false},
	{name: "daemon number above 65535 is a name", daemon: "70000", deny: "70000: ALL\n", client: "192.0.2.1", local: "192.0.2.25:25", want: false},
	{name: "daemon@host", deny: "smtp-bs@192.0.2.25: ALL\n", client: "192.0.2.1", local: "192.0.2.25:25", want: false},
	{name: "daemon@host other host", deny: "smtp-bs@192.0.2.26: ALL\n", client: "192.0.2.1", local: "192.0.2.25:25", want: true},
	{name: "daemon@host without server info", deny: "smtp-bs@192.0.2.25: ALL\n", client: "192.0.2.1", want: true},
	{name: "daemon@network", deny: "ALL@192.0.2.0/24: ALL\n", client: "10.0.0.1", local: "192.0.2.25:25", want: false},
	{name: "daemon@[ipv6]", deny: "smtp-bs@[2001:db8::25]: ALL\n", client: "192.0.2.1", local: "[2001:db8::25]:25", want: false},
	{name: "daemon@UNKNOWN without server", deny: "smtp-bs@UNKNOWN: ALL\n", client: "192.0.2.1", want: false},
	{name: "daemon KNOWN", deny: "KNOWN: ALL\n", client: "192.0.2.1", want: false},
	{name: "daemon name truncated to 127 bytes", daemon: strings.Repeat("d", 130), deny: strings.Repeat("d", 127) + ": ALL\n", client: "192.0.2.1", want: false},

	// Client patterns: addresses.
	{name: "exact address", deny: "ALL: 192.0.2.1\n", client: "192.0.2.1", want: false},
	{name: "other address", deny: "ALL: 192.0.2.2\n", client: "192.0.2.1", want: true},
	{name: "prefix with trailing dot", deny: "ALL: 192.0.2.\n", client: "192.0.2.1", want: false},
	{name: "prefix is textual", deny: "ALL: 192.0.2\n", client: "192.0.2.1", want: true},
	{name: "prefix 19. does not match 192.", deny: "ALL: 19.\n", client: "192.0.2.1", want: true},
	{name: "leading dot matches address suffix", deny: "ALL: .2.1\n", client: "192.0.2.1", want: false},
	{name: "netmask dotted", deny: "ALL: 192.0.2.0/255.255.255.0\n", client: "192.0.2.1", want: false},
	{name: "netmask dotted other net", deny: "ALL: 192.0.3.0/255.255.255.0\n", client: "192.0.2.1", want: true},
	{name: "netmask prefix length", deny: "ALL: 192.0.0.0/16\n", client: "192.0.2.1", want: false},
	{name: "netmask /32", deny: "ALL: 192.0.2.1/32\n", client: "192.0.2.1", want: false},
	{name: "netmask /0 is invalid", deny: "ALL: 0.0.0.0/0\n", client: "192.0.2.1", want: true},
	{name: "netmask 0.0.0.0 matches all", deny: "ALL: 0.0.0.0/0.0.0.0\n", client: "192.0.2.1", want: false},
	{name: "netmask 255.255.255.255 is invalid", deny: "ALL: 192.0.2.1/255.255.255.255\n", client: "192.0.2.1", want: true},
	{name: "netmask /33 is invalid", deny: "ALL: 192.0.2.1/33\n", client: "192.0.2.1", want: true},
	{name: "network with host bits set never matches", deny: "ALL: 192.0.2.1/24\n", client: "192.0.2.1", want: true},
	{name: "non-contiguous mask", deny: "ALL: 192.0.0.1/255.0.0.255\n", client: "192.7.7.1", want: false},
	{name: "netmask with octal net", deny: "ALL: 0300.0.2.0/24\n", client: "192.0.2.1", want: false},
	{name: "netmask short form refused", deny: "ALL: 192.2/8\n", client: "192.0.2.1", want: true},
	{name: "netmask length with junk", deny: "ALL: 192.0.2.0/24junk\n", client: "192.0.2.1", want: false},
	{name: "address 255.255.255.255 never masked", deny: "ALL: 255.0.0.0/8\n", client: "255.255.255.255", want: true},
	{name: "address wildcard", deny: "ALL: 192.0.*.1\n", client: "192.0.2.1", want: false},
	{name: "address ? wildcard", deny: "ALL: 192.0.2.?\n", client: "192.0.2.1", want: false},
	{name: "address ? wildcard too short", deny: "ALL: 192.0.2.??\n", client: "192.0.2.1", want: true},
	{name: "star star needs a character", deny: "ALL: 192.0.2.1**\n", client: "192.0.2.1", want: true},
	{name: "star then dot wildcard", deny: "ALL: *.1\n", client: "192.0.2.1", want: false},
	{name: "wildcard disables trailing dot prefix", deny: "ALL: 19?.\n", client: "192.0.2.1", want: true},

	// IPv6.
	{name: "v6 bracket exact", deny: "ALL: [2001:db8::1]\n", client: "2001:db8::1", want: false},
	{name: "v6 bracket other spelling", deny: "ALL: [2001:0db8:0:0::1]\n", client: "2001:db8::1", want: false},
	{name: "v6 bracket prefix", deny: "ALL: [2001:db8::]/32\n", client: "2001:db8:5::1", want: false},
	{name: "v6 bracket prefix other net", deny: "ALL: [2001:db9::]/32\n", client: "2001:db8:5::1", want: true},
	{name: "v6 network with host bits set still matches", deny: "ALL: [2001:db8::1]/32\n", client: "2001:db8:5::1", want: false},
	{name: "v6 prefix /0", deny: "ALL: [::]/0\n", client: "2001:db8::1", want: false},
	{name: "v6 prefix empty length", deny: "ALL: [::1]/\n", client: "2001:db8::1", want: false},
	{name: "v6 prefix /129 invalid", deny: "ALL: [2001:db8::1]/129\n", client: "2001:db8::1", want: true},
	{name: "v6 prefix /127", deny: "ALL: [2001:db8::]/127\n", client: "2001:db8::1", want: false},
	{name: "v6 unbracketed splits at colon", deny: "ALL: 2001:db8::1\n", client: "2001:db8::1", want: true},
	{name: "v6 unbracketed colon makes options", allow: "ALL: ALL:db8::1\n", client: "2001:db8::1", want: false},
	{name: "v6 wildcard on text", deny: "ALL: [2001:db8::*]\n", client: "2001:db8::1", want: true},
	{name: "v6 wildcard inside brackets text", deny: "ALL: *db8::1\n", client: "2001:db8::1", want: true},
	{name: "v6 client v4 pattern", deny: "ALL: 0.0.0.0/0.0.0.0\n", client: "2001:db8::1", want: true},
	{name: "v4 client v6 pattern", deny: "ALL: [::ffff:192.0.2.1]\n", client: "192.0.2.1", want: true},
	{name: "v4 client v6 prefix", deny: "ALL: [::]/0\n", client: "192.0.2.1", want: true},
	{name: "v6 numeric scope", deny: "ALL: [2001:db8::1%5]\n", client: "2001:db8::1", want: false},
	{name: "v6 bad scope", deny: "ALL: [2001:db8::1%x]\n", client: "2001:db8::1", want: true},
	{name: "v6 loopback", deny: "ALL: [::1]\n", client: "::1", want: false},

	// v4-mapped clients are IPv4 clients.
	{name: "mapped client exact v4", deny: "ALL: 192.0.2.1\n", client: "::ffff:192.0.2.1", want: false},
	{name: "mapped client netmask", deny: "ALL: 192.0.2.0/24\n", client: "::ffff:192.0.2.1", want: false},
	{name: "mapped client v6 pattern", deny: "ALL: [::ffff:192.0.2.1]\n", client: "::ffff:192.0.2.1", want: true},
	{name: "mapped client prefix", deny: "ALL: 192.\n", client: "::ffff:192.0.2.1", want: false},

	// Wildcards and keywords.
	{name: "ALL lowercase", deny: "all: all\n", client: "192.0.2.1", want: false},
	{name: "EXCEPT client", deny: "ALL: ALL EXCEPT 192.0.2.1\n", client: "192.0.2.1", want: true},
	{name: "EXCEPT client other", deny: "ALL: ALL EXCEPT 192.0.2.1\n", client: "192.0.2.2", want: false},
	{name: "nested EXCEPT", deny: "ALL: 192.0.2. EXCEPT 192.0.2.0/28 EXCEPT 192.0.2.1\n", client: "192.0.2.1", want: false},
	{name: "nested EXCEPT middle", deny: "ALL: 192.0.2. EXCEPT 192.0.2.0/28 EXCEPT 192.0.2.1\n", client: "192.0.2.2", want: true},
	{name: "EXCEPT first", deny: "ALL: EXCEPT 192.0.2.1\n", client: "192.0.2.1", want: true},
	{name: "EXCEPT at end", deny: "ALL: ALL EXCEPT\n", client: "192.0.2.1", want: false},
	{name: "deep EXCEPT nesting", deny: "ALL: ALL" + strings.Repeat(" EXCEPT ALL", 150) + "\n", client: "192.0.2.1", want: false},
	{name: "deep EXCEPT nesting odd", deny: "ALL: ALL" + strings.Repeat(" EXCEPT ALL", 151) + "\n", client: "192.0.2.1", want: true},
	{name: "both lists EXCEPT", deny: "ALL EXCEPT sshd: ALL EXCEPT 10.0.0.1\n", client: "192.0.2.1", want: false},
	{name: "UNKNOWN without name", deny: "ALL: UNKNOWN\n", client: "192.0.2.1", want: false},
	{name: "unknown as plain word", deny: "ALL: unknown\n", client: "192.0.2.1", want: false},
	{name: "KNOWN without name", deny: "ALL: KNOWN\n", client: "192.0.2.1", want: true},
	{name: "LOCAL without name", deny: "ALL: LOCAL\n", client: "192.0.2.1", want: true},
	{name: "PARANOID without name", deny: "ALL: PARANOID\n", client: "192.0.2.1", want: true},
	{name: "UNKNOWN without address", deny: "ALL: UNKNOWN\n", want: false},
	{name: "KNOWN without address", deny: "ALL: KNOWN\n", want: true},
	{name: "ALL without address", deny: "ALL: ALL\n", want: false},
	{name: "netgroup never matches", deny: "ALL: @trusted\n", client: "192.0.2.1", want: true},

	// Names.
	{name: "name exact", deny: "ALL: mx.example.org\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 mx.example.org", "host mx.example.org mx.example.org 192.0.2.1"}, want: false},
	{name: "name case-insensitive", deny: "ALL: MX.Example.ORG\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 mx.example.org", "host mx.example.org mx.example.org 192.0.2.1"}, want: false},
	{name: "domain suffix", deny: "ALL: .example.org\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 mx.example.org", "host mx.example.org mx.example.org 192.0.2.1"}, want: false},
	{name: "domain suffix needs more than the suffix", deny: "ALL: .example.org\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 example.org", "host example.org example.org 192.0.2.1"}, want: true},
	{name: "domain suffix other domain", deny: "ALL: .example.org\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 mx.badexample.org", "host mx.badexample.org mx.badexample.org 192.0.2.1"}, want: true},
	{name: "name wildcard", deny: "ALL: mx?.example.*\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 mx1.example.org", "host mx1.example.org mx1.example.org 192.0.2.1"}, want: false},
	{name: "KNOWN with verified name", deny: "ALL: KNOWN\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 mx.example.org", "host mx.example.org mx.example.org 192.0.2.1"}, want: false},
	{name: "UNKNOWN with verified name", deny: "ALL: UNKNOWN\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 mx.example.org", "host mx.example.org mx.example.org 192.0.2.1"}, want: true},
	{name: "LOCAL with dotless name", deny: "ALL: LOCAL\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 gateway", "host gateway gateway 192.0.2.1"}, want: false},
	{name: "LOCAL with dotted name", deny: "ALL: LOCAL\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 mx.example.org", "host mx.example.org mx.example.org 192.0.2.1"}, want: true},
	{name: "PARANOID name without address", deny: "ALL: PARANOID\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 mx.example.org"}, want: false},
	{name: "PARANOID forward to other address", deny: "ALL: PARANOID\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 mx.example.org", "host mx.example.org mx.example.org 192.0.2.9"}, want: false},
	{name: "PARANOID verified", deny: "ALL: PARANOID\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 mx.example.org", "host mx.example.org mx.example.org 192.0.2.9", "host mx.example.org mx.example.org 192.0.2.1"}, want: true},
	{name: "PARANOID alias name", deny: "ALL: PARANOID\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 www.example.org", "host www.example.org server.example.org 192.0.2.1"}, want: false},
	{name: "PARANOID localhost alias allowed", deny: "ALL: PARANOID\n", client: "127.0.0.1",
		dns: []string{"ptr 127.0.0.1 localhost", "host localhost localhost.localdomain 127.0.0.1"}, want: true},
	{name: "PARANOID numeric PTR", deny: "ALL: PARANOID\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 192.0.2.1"}, want: false},
	{name: "numeric PTR cannot fake an address", deny: "ALL: 10.0.0.1\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 10.0.0.1"}, want: true},
	{name: "PARANOID v6 name", deny: "ALL: PARANOID\n", client: "2001:db8::1",
		dns: []string{"ptr 2001:db8::1 v6.example.org", "host v6.example.org v6.example.org 192.0.2.1"}, want: false},
	{name: "v6 name verified by AAAA", deny: "ALL: .example.org\n", client: "2001:db8::1",
		dns: []string{"ptr 2001:db8::1 v6.example.org", "host v6.example.org v6.example.org 2001:db8::1"}, want: false},
	{name: "paranoid name does not match its text", deny: "ALL: mx.example.org\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 mx.example.org"}, want: true},
	{name: "numeric pattern never looks at the name", deny: "ALL: 10.0.0.1 EXCEPT 10.0.0.\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 10.0.0.1"}, want: true},
	{name: "name truncated to 127 bytes", deny: "ALL: " + strings.Repeat("a", 127) + "\n", client: "192.0.2.1",
		dns: []string{"ptr 192.0.2.1 " + strings.Repeat("a", 130), "host " + strings.Repeat("a", 127) + " " + strings.Repeat("a", 127) + " 192.0.2.1"}, want: false},

	// user@host.
	{name: "user@host unknown user", deny: "ALL: KNOWN@192.0.2.1\n", client: "192.0.2.1", want: true},
	{name: "UNKNOWN@host", deny: "ALL: UNKNOWN@192.0.2.1\n", client: "192.0.2.1", want: false},
	{name: "ALL@host", deny: "ALL: ALL@ALL\n", client: "192.0.2.1", want: false},
	{name: "named user@host", deny: "ALL: alice@192.0.2.1\n", client: "192.0.2.1", user: "alice", want: false},
	{name: "named user other user", deny: "ALL: alice@192.0.2.1\n", client: "192.0.2.1", user: "bob", want: true},
	{name: "user wildcard", deny: "ALL: a*@192.0.2.0/24\n", client: "192.0.2.1", user: "alice", want: false},
	{name: "empty host after @", deny: "ALL: alice@\n", client: "192.0.2.1", user: "alice", want: true},

	// /path pattern files.
	{name: "pattern file", deny: "ALL: $DIR/bad\n", files: map[string]string{"bad": "10.0.0.1\n192.0.2.0/24 # comment\n"}, client: "192.0.2.1", want: false},
	{name: "pattern file no match", deny: "ALL: $DIR/bad\n", files: map[string]string{"bad": "10.0.0.1\n"}, client: "192.0.2.1", want: true},
	{name: "pattern file commas are not separators", deny: "ALL: $DIR/bad\n", files: map[string]string{"bad": "10.0.0.1,192.0.2.1\n"}, client: "192.0.2.1", want: true},
	{name: "pattern file missing", deny: "ALL: $DIR/nothere\n", client: "192.0.2.1", want: true},
	{name: "pattern file nested", deny: "ALL: $DIR/a\n", files: map[string]string{"a": "10.0.0.1 $DIR/b\n", "b": "192.0.2.\n"}, client: "192.0.2.1", want: false},
	{name: "pattern file cycle fails closed", allow: "ALL: $DIR/a\n", files: map[string]string{"a": "10.0.0.1 $DIR/a 192.0.2.1\n"}, client: "192.0.2.1", want: false,
		noOracle: "libwrap recurses until it crashes"},
	{name: "pattern file cycle after a match", allow: "ALL: $DIR/a\n", deny: "ALL: ALL\n", files: map[string]string{"a": "192.0.2.1 $DIR/a\n"}, client: "192.0.2.1", want: true},
	{name: "pattern file read twice", deny: "ALL: $DIR/a $DIR/b\n", files: map[string]string{"a": "10.0.0.1 $DIR/b\n", "b": "10.0.0.2\n"}, client: "192.0.2.1", want: true},
	{name: "pattern file for server and client", deny: "ALL@$DIR/a: $DIR/a\n", files: map[string]string{"a": "192.0.2.1 192.0.2.25\n"}, client: "192.0.2.1", local: "192.0.2.25:25", want: false},
	{name: "pattern file EXCEPT", deny: "ALL: ALL EXCEPT $DIR/good\n", files: map[string]string{"good": "192.0.2.1\n"}, client: "192.0.2.1", want: true},
	{name: "pattern file in daemon@host", deny: "smtp-bs@$DIR/srv: ALL\n", files: map[string]string{"srv": "192.0.2.25"}, client: "192.0.2.1", local: "192.0.2.25:25", want: false},

	// Options.
	{name: "deny option in allow file", allow: "ALL: 192.0.2.1: deny\n", client: "192.0.2.1", want: false},
	{name: "allow option in deny file", deny: "ALL: 192.0.2.1: allow\n", client: "192.0.2.1", want: true},
	{name: "options are case-insensitive", deny: "ALL: ALL: ALLOW\n", client: "192.0.2.1", want: true},
	{name: "allow must be last", deny: "ALL: ALL: allow: severity info\n", client: "192.0.2.1", want: false},
	{name: "allow with value", deny: "ALL: ALL: allow yes\n", client: "192.0.2.1", want: false},
	{name: "allow then colon and newline", deny: "ALL: ALL: allow:\n", client: "192.0.2.1", want: false},
	{name: "empty option field", allow: "ALL: ALL:\n", client: "192.0.2.1", want: false},
	{name: "empty option between", allow: "ALL: ALL: severity info :: allow\n", client: "192.0.2.1", want: false, sev: "info"},
	{name: "unknown option denies", allow: "ALL: ALL: frobnicate\n", client: "192.0.2.1", want: false},
	{name: "setenv", allow: "ALL: ALL: setenv RELAYCLIENT\n", client: "192.0.2.1", want: true, env: map[string]string{"RELAYCLIENT": ""}},
	{name: "setenv with value", allow: "ALL: ALL: setenv GREETING  hello  world \n", client: "192.0.2.1", want: true, env: map[string]string{"GREETING": "hello  world"}},
	{name: "setenv with equals", allow: "ALL: ALL: setenv = A b\n", client: "192.0.2.1", want: true, env: map[string]string{"A": "b"}},
	{name: "setenv name with equals denies", allow: "ALL: ALL: setenv A=b\n", client: "192.0.2.1", want: false},
	{name: "setenv without value denies", allow: "ALL: ALL: setenv\n", client: "192.0.2.1", want: false},
	{name: "setenv escaped colon", allow: "ALL: ALL: setenv X a\\:b\n", client: "192.0.2.1", want: true, env: map[string]string{"X": "a:b"}},
	{name: "setenv expansions", allow: "ALL: ALL: setenv X %a/%c/%d/%h/%r/%R/%s/%u/%%/%z/%\n", client: "192.0.2.1", local: "192.0.2.25:25",
		want: true, env: map[string]string{"X": "192.0.2.1/192.0.2.1/smtp-bs/192.0.2.1/0/25/smtp-bs@192.0.2.25/unknown/%//%"}},
	{name: "setenv expansion after name lookup", allow: "ALL: .example.org: setenv X %h %n %c\n", client: "192.0.2.1", user: "alice",
		dns:  []string{"ptr 192.0.2.1 mx.example.org", "host mx.example.org mx.example.org 192.0.2.1"},
		want: true, env: map[string]string{"X": "mx.example.org mx.example.org alice@mx.example.org"}},
	{name: "setenv expansion sanitized", allow: "ALL: ALL: setenv X %u\n", client: "192.0.2.1", user: "a b;c",
		want: true, env: map[string]string{"X": "a_b_c"}},
	{name: "setenv in deny file then deny", deny: "ALL: ALL: setenv RELAYCLIENT\n", client: "192.0.2.1", want: false},
	{name: "setenv last wins", allow: "ALL: ALL: setenv A 1: setenv A 2: allow\n", client: "192.0.2.1", want: true, env: map[string]string{"A": "2"}},
	{name: "severity level", allow: "ALL: ALL: severity notice\n", client: "192.0.2.1", want: true, sev: "notice"},
	{name: "severity facility.level", allow: "ALL: ALL: severity MAIL.info\n", client: "192.0.2.1", want: true, sev: "MAIL.info"},
	{name: "severity bad", allow: "ALL: ALL: severity loud\n", client: "192.0.2.1", want: false},
	{name: "severity bad facility", allow: "ALL: ALL: severity authpriv.info\n", client: "192.0.2.1", want: false},
	{name: "nice", allow: "ALL: ALL: nice: nice 5: nice = -3\n", client: "192.0.2.1", want: true},
	{name: "nice bad", allow: "ALL: ALL: nice 5x\n", client: "192.0.2.1", want: false},
	{name: "umask", allow: "ALL: ALL: umask 022\n", client: "192.0.2.1", want: true},
	{name: "umask too big", allow: "ALL: ALL: umask 1777\n", client: "192.0.2.1", want: false},
	{name: "umask not octal", allow: "ALL: ALL: umask 8\n", client: "192.0.2.1", want: false},
	{name: "linger", allow: "ALL: ALL: linger 10\n", client: "192.0.2.1", want: true},
	{name: "linger negative", allow: "ALL: ALL: linger -1\n", client: "192.0.2.1", want: false},
	{name: "keepalive", allow: "ALL: ALL: keepalive\n", client: "192.0.2.1", want: true},
	{name: "keepalive with value", allow: "ALL: ALL: keepalive 1\n", client: "192.0.2.1", want: false},
	{name: "rfc931", allow: "ALL: ALL: rfc931\n", client: "192.0.2.1", want: true},
	{name: "rfc931 timeout", allow: "ALL: ALL: rfc931 5\n", client: "192.0.2.1", want: true},
	{name: "rfc931 zero", allow: "ALL: ALL: rfc931 0\n", client: "192.0.2.1", want: false},
	{name: "user option existing", allow: "ALL: ALL: user nobody\n", client: "192.0.2.1", want: true},
	{name: "user.group option", allow: "ALL: ALL: user root.root\n", client: "192.0.2.1", want: true},
	{name: "user option unknown", allow: "ALL: ALL: user no-such-user-xyz\n", client: "192.0.2.1", want: false},
	{name: "group option unknown", allow: "ALL: ALL: group no-such-group-xyz\n", client: "192.0.2.1", want: false},
	{name: "banners ignored", allow: "ALL: ALL: banners /nonexistent/dir\n", client: "192.0.2.1", want: true},
	{name: "spawn fails closed", allow: "ALL: ALL: spawn /bin/true\n", client: "192.0.2.1", want: false,
		noOracle: "libwrap runs the command and allows"},
	{name: "twist fails closed", allow: "ALL: ALL: twist /bin/echo 421 go away\n", client: "192.0.2.1", want: false,
		noOracle: "libwrap replaces the process with the command"},
	{name: "aclexec fails closed", allow: "ALL: ALL: aclexec /bin/true\n", client: "192.0.2.1", want: false,
		noOracle: "libwrap allows or denies by the command's exit status"},
	{name: "spawn in deny file", deny: "ALL: ALL: spawn /bin/true\n", client: "192.0.2.1", want: false,
		noOracle: "libwrap runs the command and denies"},
	{name: "twist not at end is an error", allow: "ALL: ALL: twist x: allow\n", client: "192.0.2.1", want: false},
	{name: "spawn without value is an error", allow: "ALL: ALL: spawn\n", client: "192.0.2.1", want: false},
	{name: "options of non-matching rules are not run", allow: "sshd: ALL: frobnicate\n", client: "192.0.2.1", want: true},
}

// buildCase writes a table case's files into dir.
func (tc *tcase) build(t *testing.T, dir string) (allow, deny string, cl Client, dns *fakeDNS) {
	t.Helper()
	expand := func(s string) string { return strings.ReplaceAll(s, "$DIR", dir) }
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		switch content {
		case "":
		case "<dir>":
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(expand(content)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	allow = write("hosts.allow", tc.allow)
	deny = write("hosts.deny", tc.deny)
	for name, content := range tc.files {
		write(name, content)
	}
	if tc.client != "" {
		cl.Addr = netip.MustParseAddr(tc.client)
	}
	if tc.local != "" {
		cl.Local = netip.MustParseAddrPort(tc.local)
	}
	cl.User = tc.user
	dns = &fakeDNS{}
	for _, rec := range tc.dns {
		f := strings.Fields(rec)
		switch f[0] {
		case "ptr":
			dns.ptr = append(dns.ptr, fakePTR{netip.MustParseAddr(f[1]), f[2]})
		case "host":
			dns.hosts = append(dns.hosts, fakeHost{f[1], f[2], netip.MustParseAddr(f[3])})
		default:
			t.Fatalf("bad dns record %q", rec)
		}
	}
	return allow, deny, cl, dns
}

func (tc *tcase) daemonName() string {
	if tc.daemon == "" {
		return "smtp-bs"
	}
	return tc.daemon
}

// TestTable checks our verdicts against the table's expectations.
func TestTable(t *testing.T) {
	for _, tc := range tableCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			allow, deny, cl, dns := tc.build(t, dir)
			v, err := Check(context.Background(), tc.daemonName(), cl, Options{AllowFile: allow, DenyFile: deny, Resolver: dns})
			if err != nil {
				t.Fatal(err)
			}
			if v.Allow != tc.want {
				t.Fatalf("Allow = %v, want %v (%s)", v.Allow, tc.want, v.Reason)
			}
			if tc.want && tc.env != nil && !reflect.DeepEqual(v.Env, tc.env) {
				t.Errorf("Env = %q, want %q", v.Env, tc.env)
			}
			if v.Severity != tc.sev {
				t.Errorf("Severity = %q, want %q", v.Severity, tc.sev)
			}
			if tc.line != 0 && v.Line != tc.line {
				t.Errorf("Line = %d, want %d (%s)", v.Line, tc.line, v.Reason)
			}
			if v.Reason == "" {
				t.Errorf("empty Reason")
			}
		})
	}
}

// TestTableAgainstLibwrap asks libwrap itself for every table case, so
// the expectations above are libwrap's, not ours.
func TestTableAgainstLibwrap(t *testing.T) {
	oracleBinary(t)
	var cases []oracleCase
	var idx []int
	for i, tc := range tableCases {
		if tc.noOracle != "" {
			continue
		}
		dir := t.TempDir()
		allow, deny, cl, dns := tc.build(t, dir)
		var env []string
		for k := range tc.env {
			env = append(env, k)
		}
		cases = append(cases, oracleCase{daemon: tc.daemonName(), allow: allow, deny: deny,
			client: cl.Addr, local: cl.Local, user: cl.User, dns: dns, env: env})
		idx = append(idx, i)
	}
	results := askOracle(t, cases)
	for k, r := range results {
		tc := tableCases[idx[k]]
		if r.allow != tc.want {
			t.Errorf("%s: libwrap says allow=%v, table says %v", tc.name, r.allow, tc.want)
			continue
		}
		if tc.want && tc.env != nil && !reflect.DeepEqual(r.env, tc.env) {
			t.Errorf("%s: libwrap env %q, table says %q", tc.name, r.env, tc.env)
		}
	}
}
