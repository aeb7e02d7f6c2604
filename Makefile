# smtp-bs: the targets a newcomer guesses.
#   make              build bin/smtp-bs, bin/qrun and the other cmd/ (static, version baked in)
#   make deps         install the Debian packages the build and the tests need (root)
#   make test         the whole test suite (the one test command; .ci/run runs it)
#   make install      install (see contrib/install.sh; DESTDIR= and PREFIX= work)
#   make uninstall    undo make install; keeps a spool that holds mail, and an edited config
#   make fmt, make vet
# make run and make bench live further down when present.

GO      ?= go
ifeq ($(origin VERSION),undefined)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
endif
LDFLAGS  = -X main.version=$(VERSION)
# One fixed bound on every test binary: a hung launcher fails the run
# instead of stalling CI.
TEST_TIMEOUT = 10m

# Where make puts the binaries (and make install takes them from).
BIN     ?= bin

PREFIX  ?= /usr/local
DESTDIR ?=
export PREFIX DESTDIR

.PHONY: all build deps test install uninstall fmt vet clean FORCE

all: build

# Every command under cmd/ (smtp-bs, qrun, and any added since).
CMDS = $(notdir $(wildcard cmd/*))

build: $(addprefix $(BIN)/,$(CMDS))

# Always handed to go build, which knows better than make what changed.
$(BIN)/%: FORCE
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $@ ./cmd/$*

deps:
	sh scripts/deps.sh

# Plain go test's output, then a line that counts the skipped tests and
# names the packages that would run them (internal/testsum). go-smtp is
# the in-repo copy with smtp-bs's patches (third_party/go-smtp/PATCHES):
# its tests run too.
test: SHELL := /bin/bash
test:
	set -o pipefail; $(GO) test -json -timeout $(TEST_TIMEOUT) ./... github.com/emersion/go-smtp | $(GO) run ./internal/testsum

install: build
	BUILD=$(BIN) sh contrib/install.sh install

uninstall:
	sh contrib/install.sh uninstall

fmt:
	$(GO) fmt ./...

vet:
	$(GO) vet ./...

clean:
	rm -rf $(BIN)

# Run smtp-bs for real on 127.0.0.1:2525 under systemd-socket-activate
# (embedded defaults; as root the spool is /var/spool/smtp-bs).
.PHONY: run
run:
	scripts/run-local.sh

# The performance comparison of issue 9 (bench/RESULTS.md): smtp-bs against
# a floor handler, sendmail and exim under tcpserver, qrun against
# sendmail -qf and exim -qff, and a 100,000-message spool. Needs root;
# fetches the MTAs with apt-get download into bench/.cache (never installed)
# and takes about 15 minutes. BENCHFLAGS="-quick" makes a short smoke run.
.PHONY: bench
bench:
	bash bench/fetch.sh
	$(GO) run ./bench/cmd/bench $(BENCHFLAGS)
