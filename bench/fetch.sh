#!/usr/bin/env bash
# Fetch what the benchmark compares against, without installing any MTA:
# Debian's postfix (for smtp-source and smtp-sink), sendmail and exim4 are
# downloaded with apt-get download and unpacked with dpkg -x into
# bench/.cache/root. Nothing lands in /etc, /var or /usr, and no daemon is
# started. tcpserver (ucspi-tcp) and strace are ordinary tools and are
# installed with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")"
cache=.cache
root=$cache/root
stamp=$root/.fetched-v2

export DEBIAN_FRONTEND=noninteractive
need=()
command -v tcpserver >/dev/null || need+=(ucspi-tcp)
command -v strace >/dev/null || need+=(strace)
command -v ip >/dev/null || need+=(iproute2)
command -v unshare >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

[ -f "$stamp" ] && exit 0

mkdir -p "$cache/debs" "$root"
# The MTAs and what they need beyond a base Debian system. Shared
# libraries that are already installed are used from the system; the ones
# that are not (liblockfile1 for sendmail, libidn12 for exim) are unpacked
# here too, as is m4 to build sendmail.cf from sendmail-cf's macros.
# opensmtpd is a next hop of the interop matrix (test/interop); it unpacks
# before postfix and sendmail, whose sendmail and newaliases stay on top.
pkgs=(postfix sendmail-bin sendmail-base sendmail-cf exim4-daemon-light exim4-base exim4-config
  liblockfile1 libidn12 m4 opensmtpd)
(cd "$cache/debs" && { apt-get download "${pkgs[@]}" 2>/dev/null || { apt-get update -qq && apt-get download "${pkgs[@]}"; }; })
for d in "$cache"/debs/*.deb; do
  dpkg -x "$d" "$root"
done
for f in usr/sbin/smtp-source usr/sbin/smtp-sink usr/libexec/sendmail/sendmail usr/sbin/exim4 usr/bin/m4 usr/sbin/smtpd; do
  [ -x "$root/$f" ] || { echo "fetch.sh: $f missing after unpacking" >&2; exit 1; }
done
touch "$stamp"
