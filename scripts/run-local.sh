#!/usr/bin/env bash
# Run smtp-bs for real on 127.0.0.1:2525, one process per connection under
# systemd-socket-activate --accept (the same fd-3 hand-off as a systemd
# socket unit with Accept=yes), with the embedded default configuration.
#
# As root: the spool is the default /var/spool/smtp-bs, created mail:mail
# 0700 by `qrun -init`, and every session drops to user mail. As any other
# user: the spool goes to ./run/spool (a two-line config says so), since
# /var/spool is not yours to write.
#
# ADDR=host:port listens elsewhere (default 127.0.0.1:2525), e.g.
#   ADDR=127.0.0.1:2526 scripts/run-local.sh
#
# Then, from another terminal:
#   swaks --server 127.0.0.1:2525 --to someone@example.org
#   bin/qrun -list            (as root; else: bin/qrun -config run/smtp-bs.toml -list)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
addr="${ADDR:-127.0.0.1:2525}"

# Say so before building anything if the address is taken: the launcher
# would otherwise fail after we printed that we listen.
host=${addr%:*} port=${addr##*:}
host=${host#[} host=${host%]}
if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
  echo "run-local.sh: something already listens on $addr (an earlier run-local.sh?)." >&2
  echo "  Stop it, or listen elsewhere: ADDR=127.0.0.1:2526 $0" >&2
  exit 1
fi

mkdir -p bin
CGO_ENABLED=0 go build -o bin/smtp-bs ./cmd/smtp-bs
CGO_ENABLED=0 go build -o bin/qrun ./cmd/qrun

if [ "$(id -u)" = 0 ]; then
  cfg=/dev/null # empty file: every key at its embedded default
else
  mkdir -p run
  cfg="$PWD/run/smtp-bs.toml"
  printf '# written by scripts/run-local.sh: defaults but for the spool\n[spool]\ndir = "%s/run/spool"\n' "$PWD" >"$cfg"
fi
bin/qrun -config "$cfg" -init
echo "smtp-bs listening on $addr (Ctrl-C stops it); queue: bin/qrun -config $cfg -list" >&2
exec systemd-socket-activate -l "$addr" --accept "$PWD/bin/smtp-bs" -config "$cfg"
