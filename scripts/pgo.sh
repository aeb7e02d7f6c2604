#!/usr/bin/env bash
# Regenerate cmd/smtp-bs/default.pgo: the CPU profile that `go build`
# applies to smtp-bs by itself (profile-guided optimization; -pgo=auto is
# the default for a main package that holds a default.pgo). It comes from
# BenchmarkSession in pkg/session, whole 2 KB and 100 KB sessions over
# 127.0.0.1 into a real spool, so the hot paths it teaches the compiler
# (go-smtp's DATA reader, bufio, the body checks) are a real session's.
# Rerun it after a change to the session path; `go build -pgo=off` builds
# without it, for an A/B run with bench/'s -smtp-bs flag.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -pgo=off -run '^$' -bench BenchmarkSession -benchtime 1500x \
	-cpuprofile "$tmp/cpu.pprof" -o "$tmp/session.test" ./pkg/session/
cp "$tmp/cpu.pprof" cmd/smtp-bs/default.pgo
echo "wrote cmd/smtp-bs/default.pgo"
