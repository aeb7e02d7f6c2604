#!/bin/sh
# contrib/chroot/mkjail.sh [-local] [-user USER] [-config FILE] JAIL
#
# Builds the directory smtp-bs locks itself into when it is started as
# root with [chroot] dir = JAIL (see contrib/chroot/README). Idempotent;
# run it as root, again whenever passwd, group or aliases change if you
# use -local.
#
# What it makes:
#   JAIL                          root:root 0755
#   JAIL/var, JAIL/var/spool      root:root 0755
#   JAIL/var/spool/smtp-bs        USER:USER 0700, the spool, by "qrun -init"
#   with -local, copies (root:root 0644) of /etc/passwd, /etc/group and the
#   aliases file, for the RCPT checks of [local] domains.
#
# What it does not make, because smtp-bs does not need it inside: hosts.allow
# and hosts.deny (read before the chroot), milter sockets (connected before
# the chroot), /etc/resolv.conf and /etc/hosts (nothing is looked up
# inside), /etc/localtime (loaded before), /dev (the log is opened before).
#
# FILE (default /etc/smtp-bs/smtp-bs.toml) must say
#   [spool]  dir = "JAIL/var/spool/smtp-bs"
#   [chroot] dir = "JAIL"
# qrun reads the same spool by that outside path; it is never jailed.
set -eu
umask 022

local=no
user=mail
config=/etc/smtp-bs/smtp-bs.toml
aliases=/etc/aliases
qrun=${QRUN:-qrun}

die() { printf 'mkjail.sh: %s\n' "$*" >&2; exit 1; }
usage() { die "usage: mkjail.sh [-local] [-user USER] [-config FILE] [-aliases FILE] JAIL"; }

while [ $# -gt 1 ]; do
	case $1 in
	-local) local=yes; shift ;;
	-user) user=$2; shift 2 ;;
	-config) config=$2; shift 2 ;;
	-aliases) aliases=$2; shift 2 ;;
	*) usage ;;
	esac
done
[ $# -eq 1 ] || usage
jail=$1
case $jail in
/*) ;;
*) die "JAIL must be an absolute path" ;;
esac
[ "$jail" != / ] || die "/ is no jail"
[ "$(id -u)" = 0 ] || die "run as root: the jail is root's"
id "$user" >/dev/null 2>&1 || die "no user $user"

for d in "$jail" "$jail/var" "$jail/var/spool"; do
	install -d -o root -g root -m 0755 "$d"
done
spool=$jail/var/spool/smtp-bs
install -d -o "$user" -g "$(id -gn "$user")" -m 0700 "$spool"
if command -v "$qrun" >/dev/null 2>&1; then
	"$qrun" -config "$config" -init
	[ -d "$spool/queue" ] || die "qrun -init made no spool in $spool: set [spool] dir = \"$spool\" and [chroot] dir = \"$jail\" in $config"
else
	printf 'mkjail.sh: %s not found: run "qrun -config %s -init" to fill %s\n' "$qrun" "$config" "$spool" >&2
fi

if [ $local = yes ]; then
	install -d -o root -g root -m 0755 "$jail/etc"
	for f in /etc/passwd /etc/group "$aliases"; do
		[ -f "$f" ] || continue
		install -d -o root -g root -m 0755 "$jail$(dirname "$f")"
		install -o root -g root -m 0644 "$f" "$jail$f"
	done
fi
printf 'mkjail.sh: %s is ready; check it with: smtp-bs -config %s -check\n' "$jail" "$config"
