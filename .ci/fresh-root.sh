#!/usr/bin/env bash
# The README's promise, checked: on a fresh Debian root (minbase, built here
# from Debian's own packages), its commands as written work. They are read
# from the README's first sh block, by the comment above each:
#   "# Once, ..."          installs what a fresh machine lacks
#   "# Run smtp-bs ..."    must take a message from swaks, which the README's
#                          queue listing (bin/qrun -list) then shows
#   "# Run the whole ..."  the test suite, which must pass (CI=true: no tool
#                          may be missing)
# Only the Go toolchain of this machine is brought in (bind-mounted read-only),
# with what the network needs: resolv.conf, apt's sources, the Go proxy
# settings and the local CA certificates where HTTPS is intercepted.
#
# Usage (root): .ci/fresh-root.sh [SUITE]   (default: bookworm)
# FRESH_ROOT_SKIP_TESTS=1 runs the install and run commands only.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
suite=${1:-bookworm}
goroot=$(go env GOROOT)
work=$(mktemp -d /var/tmp/smtp-bs-fresh.XXXXXX)
root=$work/root
cleanup() {
  # The mounts live in a private mount namespace and are gone with it;
  # --one-file-system keeps rm out of anything still mounted regardless.
  if findmnt -rn -o TARGET | grep -q "^$root"; then
    echo "fresh-root: $root still has mounts; leaving it" >&2
    return
  fi
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

say() { echo "fresh-root: $*"; }

# The README's commands, by the comment above each.
readme_cmd() {
  awk -v want="$1" '
    /^```sh/ { inblock = 1; next }
    inblock && /^```/ { exit }
    inblock && /^#/ { take = (index($0, want) == 3); next }
    inblock && take && NF { print; exit }
  ' "$repo/README.md"
}
deps_cmd=$(readme_cmd "Once")
run_cmd=$(readme_cmd "Run smtp-bs")
test_cmd=$(readme_cmd "Run the whole test suite")
list_cmd=bin/qrun\ -list
for c in deps_cmd run_cmd test_cmd; do
  if [ -z "${!c}" ]; then
    echo "fresh-root: README.md's first sh block has no command for $c" >&2
    exit 1
  fi
done
if ! grep -qF "$list_cmd" "$repo/README.md"; then
  echo "fresh-root: README.md no longer names $list_cmd as the queue listing" >&2
  exit 1
fi
say "README: install: $deps_cmd | run: $run_cmd | test: $test_cmd | queue: $list_cmd"

# Debian's sources as this machine has them (its mirror, maybe a snapshot).
sources=()
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
  if [ -s "$f" ] && grep -q '^[^#]' "$f"; then sources+=("$f"); break; fi
done
if [ ${#sources[@]} -eq 0 ]; then
  sources=("deb http://deb.debian.org/debian $suite main" "deb http://deb.debian.org/debian-security $suite-security main")
fi

start=$(date +%s)
mmdebstrap --quiet --variant=minbase --mode=root "$suite" "$root" "${sources[@]}"
say "minbase $suite root built in $(($(date +%s) - start)) s"

# What the network needs, and nothing of the project's tools.
cp /etc/resolv.conf "$root/etc/resolv.conf"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi
mkdir -p "$root/usr/local/go"
# A clean clone of what is committed, as a new user would have it.
git clone -q --no-local "$repo" "$root/root/smtp-bs"
git -C "$repo" rev-parse --short HEAD

goenv=()
for v in GOPROXY GOSUMDB GONOSUMDB GONOPROXY GOPRIVATE http_proxy https_proxy no_proxy; do
  if [ -n "${!v:-}" ]; then goenv+=("$v=${!v}"); fi
done
for v in GOPROXY GOSUMDB GONOSUMDB GONOPROXY GOPRIVATE; do
  val=$(go env "$v")
  if [ -n "$val" ]; then goenv+=("$v=$val"); fi
done

cat >"$work/inside.sh" <<'EOF'
set -euo pipefail
cd /root/smtp-bs
say() { echo "fresh-root: $*"; }
say "as a new user: $DEPS"
eval "$DEPS" >/tmp/deps.log 2>&1 || { cat /tmp/deps.log; exit 1; }
for t in make git swaks; do command -v $t >/dev/null || { say "$DEPS did not install $t"; exit 1; }; done

say "as a new user: $RUN"
setsid bash -c "$RUN" >/tmp/run.log 2>&1 &
run=$!
# The run command and everything it started end with this script.
trap 'kill -- -$run 2>/dev/null || true' EXIT
# It builds first (module downloads included): allow it ten minutes.
up=no
for i in $(seq 1 3000); do
  if grep -q "listening on" /tmp/run.log && (exec 3<>/dev/tcp/127.0.0.1/2525) 2>/dev/null; then up=yes; break; fi
  if ! kill -0 $run 2>/dev/null; then cat /tmp/run.log; say "$RUN exited"; exit 1; fi
  sleep 0.2
done
if [ $up = no ]; then cat /tmp/run.log; say "$RUN did not listen on 127.0.0.1:2525 within 10 minutes"; exit 1; fi
swaks --server 127.0.0.1:2525 --from root@localhost --to someone@example.org \
  --header "Subject: fresh root" >/tmp/swaks.log 2>&1 || { cat /tmp/swaks.log /tmp/run.log; exit 1; }
grep -E '^<- +250 .*queued' /tmp/swaks.log
say "as a new user: $LIST"
out=$(eval "$LIST")
echo "$out"
kill -- -$run 2>/dev/null || kill $run
wait $run 2>/dev/null || true
trap - EXIT
if ! grep -q "someone@example.org" <<<"$out"; then
  say "the message is not in $LIST's listing"
  exit 1
fi
say "the message swaks sent is listed"

if [ "${FRESH_ROOT_SKIP_TESTS:-}" = 1 ]; then exit 0; fi
say "as a new user: $TEST"
start=$(date +%s)
eval "$TEST"
say "$TEST passed in $(($(date +%s) - start)) s"
EOF

say "entering the root (private mount namespace)"
unshare --mount --propagation private --fork -- bash -c '
  set -e
  root=$1 goroot=$2 work=$3; shift 3
  # The root is a mount point of its own, as / is on a real machine
  # (unshare --propagation, used by the interop tests, needs that).
  mount --bind "$root" "$root"
  mount -t proc proc "$root/proc"
  mount --rbind /sys "$root/sys"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs tmpfs "$root/run"
  mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
  mount --bind "$goroot" "$root/usr/local/go"
  mount -o remount,bind,ro "$root/usr/local/go"
  cp "$work/inside.sh" "$root/tmp/inside.sh"
  exec chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/go/bin:/root/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CI=true "$@" bash /tmp/inside.sh
' _ "$root" "$goroot" "$work" "${goenv[@]}" \
  DEPS="$deps_cmd" RUN="$run_cmd" TEST="$test_cmd" LIST="$list_cmd" \
  FRESH_ROOT_SKIP_TESTS="${FRESH_ROOT_SKIP_TESTS:-}"
say "passed in $(($(date +%s) - start)) s"
