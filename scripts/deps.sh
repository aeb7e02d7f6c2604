#!/bin/sh
# Install, on a fresh Debian (bookworm or later), everything the README's
# commands and the whole test suite use, but Go itself (go.dev's tarball).
# One list in one place: .ci/run and `make deps` run this script, and the
# README names the same packages (test/launchers checks). Needs root.
#
#   scripts/deps.sh          build + run + test tools
#   scripts/deps.sh --list   print the packages, one per line
set -eu

# Each line: a package, and why it is here. Recommends are not installed, so
# a tool that needs one of its Recommends to do what the tests ask of it
# names that package here too (swaks' TLS needs libnet-ssleay-perl).
packages='
make                 the README test command
git                  version baked into the binaries (git describe)
ca-certificates      module downloads from the Go module proxy over HTTPS
systemd              systemd-socket-activate (run-local.sh, launcher tests), systemd-analyze
swaks                a real SMTP client
libnet-ssleay-perl   swaks STARTTLS/TLS (only recommended by swaks)
libio-socket-ssl-perl swaks TLS
libauthen-sasl-perl  swaks AUTH
openssl              test CA, s_client
xinetd               a real launcher
ucspi-tcp            tcpserver, a real launcher
tcpd                 tcpdmatch, libwrap as an oracle
libwrap0-dev         libwrap as an oracle (cgo harness)
gcc                  the libwrap oracle harness
libc6-dev            the libwrap oracle harness
strace               crash points
python3              smtplib client, mailbox reader
python3-dkim         a DKIM verifier
opendkim             a real milter
opendkim-tools       opendkim-genkey
haproxy              a real load balancer sending PROXY v1/v2 headers (test/proxy)
nginx                the stream fragment of contrib/nginx, PROXY v1 (test/proxy)
libnginx-mod-stream  the stream module of nginx
rspamd               a real content filter through the milter interface (test/checks)
util-linux           setpriv, unshare
argon2               the reference argon2 CLI (auth tests)
man-db               man --warnings renders the manual pages (test/man), man finds installed ones
groff-base           groff -ww -man: the manual pages render without a warning
libdb5.3             Postfix smtp-sink (unpacked, not installed)
libicu72             Postfix smtp-sink
libnsl2              Postfix smtp-sink
libgnutls-dane0      Exim (unpacked, not installed) links it: test/interop
libevent-2.1-7       OpenSMTPD (unpacked, not installed) links it: test/interop
python3-aiosmtpd     a next hop in the interop matrix (test/interop)
dovecot-core         Dovecot, for its LMTP server in the interop matrix
dovecot-lmtpd        the LMTP server of Dovecot: local delivery over LMTP (test/interop)
'

list() { printf '%s\n' "$packages" | awk 'NF { print $1 }'; }

if [ "${1:-}" = --list ]; then
  list
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  exec sudo "$0" "$@"
fi

want=$(list)

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# No daemon of a package (dovecot, opendkim, haproxy, nginx, rspamd) is
# started by its install: the tests start their own, on 127.0.0.1.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $want >/dev/null

# Postfix (smtp-sink, smtp-source), sendmail, Exim and OpenSMTPD as peers to test and
# measure against: an installed MTA would start and take port 25, so they
# are only downloaded and unpacked, into bench/.cache/root.
bash "$(dirname "$0")/../bench/fetch.sh"

if ! command -v go >/dev/null 2>&1 && ! [ -x /usr/local/go/bin/go ]; then
  echo "deps.sh: no Go toolchain: install Go $(sed -n 's/^go //p' "$(dirname "$0")/../go.mod") from https://go.dev/dl/ into /usr/local/go (Debian 12's golang-go is too old)" >&2
  exit 1
fi
