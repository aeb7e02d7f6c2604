#!/usr/bin/env bash
# Runs every Go fuzz target of the repository (func FuzzXxx in a _test.go
# file under cmd/, pkg/ or internal/) for a short, fixed time each, on top
# of its committed seed corpus (testdata/fuzz/FuzzXxx/).
#
# Usage: .ci/fuzz.sh [-t DURATION] [PACKAGE_DIR...]
#   -t DURATION   time per target (default: $FUZZTIME, else 10s)
#   PACKAGE_DIR   only these package directories, e.g. pkg/spool pkg/session
#
# A target that fails leaves its input in PACKAGE_DIR/testdata/fuzz/FuzzXxx/;
# commit it once fixed, so that plain `go test` replays it from then on.
# Exit status: 0 if every target passed, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-10s}
if [ "${1:-}" = "-t" ]; then
	fuzztime=$2
	shift 2
fi
dirs=("$@")
if [ ${#dirs[@]} -eq 0 ]; then
	mapfile -t dirs < <(grep -rl --include='*_test.go' '^func Fuzz' cmd pkg internal 2>/dev/null | xargs -r -n1 dirname | sort -u)
fi

pass=0
failed=()
for dir in "${dirs[@]}"; do
	dir=${dir#./}
	for name in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //' | sort -u); do
		echo "fuzz: $dir $name for $fuzztime"
		# The fuzzing engine itself can time out talking to a worker on a
		# loaded machine ("context deadline exceeded", no input written):
		# that says nothing of our code, so such a run is tried again, up
		# to three runs in all (a target that really hangs does it every
		# time). A real failure always writes its input and fails at once.
		ok=0
		for attempt in 1 2 3; do
			out=$(mktemp)
			if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "./$dir" 2>&1 | tee "$out"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
				ok=1
			elif [ "$attempt" != 3 ] && grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"; then
				echo "fuzz: $dir $name: the fuzzing engine timed out, not the target; once more"
				rm -f "$out"
				continue
			fi
			rm -f "$out"
			break
		done
		if [ "$ok" = 1 ]; then
			pass=$((pass + 1))
		else
			failed+=("$dir $name")
		fi
	done
done

if [ ${#failed[@]} -ne 0 ]; then
	echo "fuzz: $pass targets passed, ${#failed[@]} FAILED:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz: $pass targets, $fuzztime each, all passed"
