# Concord build. Every target works from a clean clone as root on Debian 12;
# tests/setup.sh installs what is missing.
GO        ?= go
# VERSION is the one version of a build: every program prints it and the .deb
# carries it. packaging/version.sh makes it from git describe, or from
# VERSION=... when given (v1.2.3 becomes 1.2.3).
override VERSION := $(shell sh packaging/version.sh '$(VERSION)')
OUT       ?= build
DAEMONS   := concord-noded concordctl
AGENTS    := $(notdir $(patsubst %/main.go,%,$(wildcard fence-agents/fence_concord_*/main.go)))

export GOFLAGS := -trimpath
export CGO_ENABLED := 0

.PHONY: all build libconcord test unit integration bench deb demo lint verify fuzz clean

all: build

build: libconcord
	@mkdir -p $(OUT)/bin
	$(GO) build -ldflags "-X github.com/concord-ha/concord/lib/sys/version.version=$(VERSION)" -o $(OUT)/bin/ ./daemons/... $(if $(AGENTS),./fence-agents/...)
	@# Each fence agent's man page is generated from its own metadata.
	@for a in $(AGENTS); do $(OUT)/bin/$$a -o manpage > man/$$a.8 || exit 1; done

# libconcord: the C client library of process groups (C11, no Go inside),
# its pkg-config file and its example, in $(OUT)/libconcord.
libconcord:
	$(MAKE) -C lib/libconcord --no-print-directory OUT=$(abspath $(OUT))/libconcord VERSION=$(VERSION)

# unit: fast, no privileges needed beyond what each test asks for (it skips loudly otherwise).
unit:
	$(GO) vet ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 ./lib/... ./daemons/... ./units/... ./packaging/... ./man/... $(if $(AGENTS),./fence-agents/...)

# integration: real systemd nodes, real fencing peers; needs root.
integration: deb
	CONCORD_DEB=$(abspath $(OUT))/concord.deb $(GO) test -p 1 -count=1 -timeout 60m -v ./tests/...

test: unit integration

bench: deb
	@# Every benchmark runs even if one fails; the target fails at the end.
	@failed=""; for b in tests/bench/*/; do \
		echo "== $$b"; CONCORD_DEB=$(abspath $(OUT))/concord.deb $(GO) run ./$$b || failed="$$failed $$b"; \
	done; if [ -n "$$failed" ]; then echo "bench: failed:$$failed"; exit 1; fi

deb: build
	VERSION=$(VERSION) OUT=$(abspath $(OUT)) sh packaging/build-deb.sh

demo: deb
	$(GO) run ./tests/cmd/concord-demo -deb $(abspath $(OUT))/concord.deb

fuzz:
	sh tests/fuzz.sh

lint: verify
verify:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || { echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) mod tidy -diff

clean:
	rm -rf $(OUT)
