#!/bin/sh
# contrib/install.sh install|uninstall: what "make install" and "make
# uninstall" run. Idempotent: running it twice changes nothing the second
# time, and it never overwrites a config file that exists.
#
# Where things go (override any of these in the environment or on make's
# command line; DESTDIR= stages everything below a directory for packagers):
#   PREFIX=/usr/local
#   SBINDIR=$PREFIX/sbin                  smtp-bs, qrun: root:root 0755, no setuid/setgid
#   UNITDIR=$PREFIX/lib/systemd/system    the systemd units (inert until enabled)
#   DATADIR=$PREFIX/share/smtp-bs         contrib files: the xinetd entry, the cron
#                                         line, the DNS drop-in, the example config
#   DOCDIR=$PREFIX/share/doc/smtp-bs      README.md and docs/
#   /etc/smtp-bs                          root:RUN_AS 0750, with smtp-bs.toml root:RUN_AS 0640
#                                         (fixed: it is the programs' compiled-in default)
#   SPOOLDIR=/var/spool/smtp-bs           RUN_AS:RUN_AS 0700, made by "qrun -init"
#   RUN_AS=mail
#
# The xinetd entry and the cron line are not put into /etc/xinetd.d and
# /etc/cron.d: each would start something (a listener on port 25, a queue
# runner) and only one launcher and one runner should be chosen. The
# commands that enable each choice are printed at the end.
#
# As root, owners and modes are set as above. As any other user (only with
# DESTDIR=), modes are set but owners cannot be: the package must set them
# (its postinst can run "qrun -init" and then "smtp-bs -check").
set -eu
umask 022

cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
SBINDIR=${SBINDIR:-$PREFIX/sbin}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
DATADIR=${DATADIR:-$PREFIX/share/smtp-bs}
DOCDIR=${DOCDIR:-$PREFIX/share/doc/smtp-bs}
CONFDIR=/etc/smtp-bs
CONF=$CONFDIR/smtp-bs.toml
SPOOLDIR=${SPOOLDIR:-/var/spool/smtp-bs}
RUN_AS=${RUN_AS:-mail}
BUILD=${BUILD:-bin}

D=$DESTDIR
units="smtp-bs.socket smtp-bs@.service qrun.service qrun.timer qrun-daemon.service
	smtp-bs-submission.socket smtp-bs-submission@.service smtp-bs-smtps.socket smtp-bs-smtps@.service"

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" = 0 ]; then root=yes; else root=no; fi

# own USER:GROUP: "-o USER -g GROUP" for install(1) as root, nothing otherwise.
own() { if [ $root = yes ]; then printf -- '-o %s -g %s' "$1" "$2"; fi; }

# subst: the contrib files name the default paths; point them at these.
subst() {
	sed -e "s|/usr/local/sbin/|$SBINDIR/|g" \
		-e "s|/usr/local/share/doc/smtp-bs|$DOCDIR|g" \
		-e "s|/var/spool/smtp-bs|$SPOOLDIR|g" "$1"
}

# conf: the config as installed: the example, with the spool directory set
# when it is not the compiled-in default (the units name SPOOLDIR too).
conf() {
	if [ "$SPOOLDIR" = /var/spool/smtp-bs ]; then
		cat contrib/smtp-bs.toml
	else
		subst contrib/smtp-bs.toml | sed -e "s|^# dir = \"$SPOOLDIR\"|dir = \"$SPOOLDIR\"|"
	fi
}

# put SRC DEST MODE: install SRC (after subst) as DEST, root:root.
put() {
	tmp=$(mktemp)
	subst "$1" >"$tmp"
	# shellcheck disable=SC2046
	install $(own root root) -m "$3" "$tmp" "$2"
	rm -f "$tmp"
}

do_install() {
	for b in smtp-bs qrun; do
		[ -x "$BUILD/$b" ] || die "$BUILD/$b is missing: run make first"
	done
	if [ $root = no ] && [ -z "$D" ]; then
		die "installing into / needs root (or stage with DESTDIR=/some/dir)"
	fi
	if [ $root = yes ] && ! id -u "$RUN_AS" >/dev/null 2>&1; then
		die "user $RUN_AS does not exist: useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin $RUN_AS"
	fi
	if [ $root = yes ] && [ "$(id -u "$RUN_AS")" = 0 ]; then
		die "RUN_AS=$RUN_AS is root: smtp-bs never runs as root"
	fi
	group=$(id -gn "$RUN_AS" 2>/dev/null || echo "$RUN_AS")

	# Binaries: root's, 0755, no setuid/setgid (install sets the mode
	# outright, clearing any such bit a previous copy had).
	install -d -m 0755 "$D$SBINDIR"
	for b in smtp-bs qrun; do
		# shellcheck disable=SC2046
		install $(own root root) -m 0755 "$BUILD/$b" "$D$SBINDIR/$b"
	done

	# Config: the directory root:mail 0750, the file root:mail 0640 and
	# never overwritten (it is the admin's).
	# shellcheck disable=SC2046
	install -d $(own root "$group") -m 0750 "$D$CONFDIR"
	if [ -e "$D$CONF" ]; then
		say "kept the existing $D$CONF"
	else
		tmp=$(mktemp)
		conf >"$tmp"
		# shellcheck disable=SC2046
		install $(own root "$group") -m 0640 "$tmp" "$D$CONF"
		rm -f "$tmp"
	fi

	# systemd units, inert until enabled.
	install -d -m 0755 "$D$UNITDIR"
	for u in $units; do
		put "contrib/systemd/$u" "$D$UNITDIR/$u" 0644
	done

	# Contrib files and docs, for the admin to copy into place.
	install -d -m 0755 "$D$DATADIR" "$D$DATADIR/xinetd" "$D$DATADIR/cron" "$D$DATADIR/systemd" "$D$DATADIR/chroot"
	put contrib/xinetd/smtp-bs "$D$DATADIR/xinetd/smtp-bs" 0644
	put contrib/cron/smtp-bs "$D$DATADIR/cron/smtp-bs" 0644
	put contrib/systemd/smtp-bs-dns.conf "$D$DATADIR/systemd/smtp-bs-dns.conf" 0644
	put contrib/systemd/smtp-bs-jail.conf "$D$DATADIR/systemd/smtp-bs-jail.conf" 0644
	put contrib/smtp-bs.toml "$D$DATADIR/smtp-bs.toml" 0644
	# The submission (587) and smtps (465) units read this config; it is
	# the admin's to copy to $CONFDIR, as README says.
	put contrib/submission.toml "$D$DATADIR/submission.toml" 0644
	for f in README mkjail.sh tcpserver-run xinetd-smtp-bs; do
		mode=0644
		case $f in *.sh | tcpserver-run) mode=0755 ;; esac
		put "contrib/chroot/$f" "$D$DATADIR/chroot/$f" $mode
	done
	install -d -m 0755 "$D$DOCDIR"
	for f in README.md docs/*.md; do
		[ -f "$f" ] && put "$f" "$D$DOCDIR/$(basename "$f")" 0644
	done

	# The spool, by qrun -init: mail:mail 0700 throughout as root (the
	# binary knows the layout); as anyone else, owned by them.
	install -d -m 0755 "$(dirname "$D$SPOOLDIR")"
	if [ -z "$D" ]; then
		"$SBINDIR/qrun" -init -config "$CONF" >/dev/null
	else
		tmp=$(mktemp)
		printf 'run_as = "%s"\n[spool]\ndir = "%s"\n' "$RUN_AS" "$D$SPOOLDIR" >"$tmp"
		chmod 0644 "$tmp"
		"$BUILD/qrun" -init -config "$tmp" >/dev/null
		rm -f "$tmp"
	fi

	if [ $root = no ]; then
		say "not root: owners were not set under $D; the package must make"
		say "  $SBINDIR/* root:root, $CONFDIR root:$group (0750), $CONF root:$group (0640),"
		say "  $SPOOLDIR $RUN_AS:$group (0700, e.g. qrun -init as root), then run smtp-bs -check"
	fi
	if [ -z "$D" ]; then
		"$SBINDIR/smtp-bs" -check -config "$CONF" || say "smtp-bs -check found problems: see above"
		# A running queue runner keeps its old binary: restart it, so it
		# reads the spool format the new smtp-bs writes.
		if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
			systemctl try-restart qrun-daemon.service 2>/dev/null || true
		fi
	fi
	cat <<EOF
install.sh: installed. Choose one launcher and one queue runner:
  systemd:  systemctl daemon-reload && systemctl enable --now smtp-bs.socket qrun.timer
            (or qrun-daemon.service instead of qrun.timer)
  xinetd:   cp $DATADIR/xinetd/smtp-bs /etc/xinetd.d/ && systemctl reload xinetd
  cron:     cp $DATADIR/cron/smtp-bs /etc/cron.d/
Edit $CONF (hostname, local_domains, [delivery] smarthost), then: smtp-bs -check
EOF
}

# rm_if_ours FILE ORIGINAL: remove FILE if it is unchanged from ORIGINAL.
rm_if_ours() {
	[ -e "$1" ] || return 0
	if [ -f "$2" ] && cmp -s "$1" "$2"; then
		rm -f "$1"
		say "removed $1"
	else
		say "kept $1: it differs from what was installed (your edits?); remove it yourself"
	fi
}

do_uninstall() {
	if [ $root = no ] && [ -z "$D" ]; then
		die "uninstalling from / needs root"
	fi
	if [ -z "$D" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
		systemctl disable --now smtp-bs.socket smtp-bs-submission.socket smtp-bs-smtps.socket \
			qrun.timer qrun-daemon.service 2>/dev/null || true
	fi
	rm -f "$D$SBINDIR/smtp-bs" "$D$SBINDIR/qrun"
	for u in $units; do
		rm -f "$D$UNITDIR/$u"
	done
	# The unit directories install made, if nothing else is in them.
	rmdir "$D$UNITDIR" 2>/dev/null && rmdir "$(dirname "$D$UNITDIR")" 2>/dev/null || true
	# Copies the admin made of the xinetd entry and the cron line go only
	# if unchanged; so does the config.
	if [ -z "$D" ]; then
		rm_if_ours /etc/xinetd.d/smtp-bs "$DATADIR/xinetd/smtp-bs"
		rm_if_ours /etc/cron.d/smtp-bs "$DATADIR/cron/smtp-bs"
	fi
	tmp=$(mktemp)
	conf >"$tmp"
	rm_if_ours "$D$CONF" "$tmp"
	rm -f "$tmp"
	rmdir "$D$CONFDIR" 2>/dev/null || true
	rm -rf "$D$DATADIR" "$D$DOCDIR"

	# The spool goes only if it holds no mail: never delete a message.
	if [ -d "$D$SPOOLDIR" ]; then
		n=$(find "$D$SPOOLDIR" -mindepth 2 | wc -l)
		if [ "$n" -eq 0 ]; then
			rm -f "$D$SPOOLDIR/lock"
			for sub in tmp data queue state corrupt hold; do
				rmdir "$D$SPOOLDIR/$sub" 2>/dev/null || true
			done
			if rmdir "$D$SPOOLDIR" 2>/dev/null; then
				say "removed the empty spool $D$SPOOLDIR"
			else
				say "kept $D$SPOOLDIR: it holds files that are not ours"
			fi
		else
			say "kept the spool $D$SPOOLDIR: it holds $n files of mail (qrun -list shows the queue);"
			say "  remove it yourself once you no longer need them: rm -r $D$SPOOLDIR"
		fi
	fi
	say "uninstalled"
}

case "${1:-}" in
install) do_install ;;
uninstall) do_uninstall ;;
*) die "usage: install.sh install|uninstall" ;;
esac
