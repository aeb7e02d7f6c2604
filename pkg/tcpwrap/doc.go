// Package tcpwrap decides whether a client may connect, from the rules in
// /etc/hosts.allow and /etc/hosts.deny, exactly as Debian's libwrap 7.6.q
// (hosts_access(5), hosts_options(5)) decides it, in pure Go.
package tcpwrap
