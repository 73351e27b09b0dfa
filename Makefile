# s3sync — build, test, demo and benchmarks. `make demo` and `make test`
# work on a fresh machine: they install the pinned S3 server they need.

GO          ?= go
GOBIN       := $(shell $(GO) env GOPATH)/bin
VERSITYGW   := $(GOBIN)/versitygw
VERSITYGW_VERSION := v1.8.0
# The second test server, for what Versity does not implement (conditions
# in batch deletes, lifecycle rules, public access blocks). AGPL-3.0; run
# as a separate program, never linked. No release tag of MinIO is a Go
# module version, so the pin is the pseudo-version of a commit.
MINIO       := $(GOBIN)/minio
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
RCLONE      := $(GOBIN)/rclone
RCLONE_VERSION := v1.76.0
BIN         := bin/s3sync
TEST_TIMEOUT ?= 40m

export S3SYNC_VERSITYGW ?= $(VERSITYGW)
export S3SYNC_MINIO ?= $(MINIO)
# The servers internal/s3test's conformance tests run against.
export S3SYNC_TEST_SERVERS ?= versity,minio
# go test -json, read back: failures, one line per package, the skipped
# tests; under CI=true a skip fails the run (internal/testcheck).
TESTCHECK   := $(CURDIR)/bin/testcheck

.PHONY: all build test demo bench lint tools clean

# make install: the binary into $(BINDIR), mount(8)'s helper mount.s3sync
# (a link to it) into $(HELPERDIR), and the systemd unit into $(UNITDIR).
# mount(8) looks for helpers only in /sbin, hence HELPERDIR's default.
# DESTDIR stages the whole tree (packaging); links point to the final paths.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
HELPERDIR   ?= /sbin
UNITDIR     ?= $(PREFIX)/lib/systemd/system
DESTDIR     ?=

all: build

# What `s3sync --version` prints first: the commit, from git when there is one.
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/s3sync

$(VERSITYGW):
	@echo "installing Versity Gateway $(VERSITYGW_VERSION) (the S3 server tests and the demo run against)"
	$(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

$(MINIO):
	@echo "installing MinIO $(MINIO_VERSION) (the second S3 server the tests run against)"
	$(GO) install github.com/minio/minio@$(MINIO_VERSION)

tools: $(VERSITYGW) $(MINIO)

$(TESTCHECK): internal/testcheck/main.go
	$(GO) build -o $@ ./internal/testcheck

# The go-fuse fork (third_party/go-fuse) is packages of this module, but
# ./... would run all of go-fuse's own tests: vet takes everything, the tests
# our packages, then fuse's and those of fs that cover our patches.
PKGS         = $(shell $(GO) list ./... | grep -v /third_party/)
FORK         := ./third_party/go-fuse
FORK_FS_TESTS := TestOnKernelAdd|TestNotifyPrune|TestForget|TestLoopbackSwappedDir

test: tools $(TESTCHECK)
	$(GO) vet ./...
	$(TESTCHECK) -- $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)
	$(TESTCHECK) -- $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(FORK)/fuse/
	$(TESTCHECK) -- $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -run '$(FORK_FS_TESTS)' $(FORK)/fs/

# The end-to-end tests with every mount served over FUSE-over-io_uring.
.PHONY: test-io-uring
test-io-uring: tools
	S3SYNC_TEST_IO_URING=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./internal/e2e/

# The chaos test (internal/e2e/chaos_test.go) over many seeds: a random
# workload through the mount, faults between it and the server, kill -9s;
# once over /dev/fuse, once over FUSE-over-io_uring; then soak-fstools.
.PHONY: soak
soak: tools
	S3SYNC_CHAOS_SEEDS=$${S3SYNC_CHAOS_SEEDS:-50} S3SYNC_CHAOS_OPS=$${S3SYNC_CHAOS_OPS:-300} \
		$(GO) test ./internal/e2e/ -run TestChaos -count=1 -timeout 3h -v
	S3SYNC_TEST_IO_URING=1 S3SYNC_CHAOS_SEEDS=$${S3SYNC_CHAOS_SEEDS:-50} S3SYNC_CHAOS_OPS=$${S3SYNC_CHAOS_OPS:-300} \
		$(GO) test ./internal/e2e/ -run TestChaos -count=1 -timeout 3h -v
	$(MAKE) soak-fstools

# xfstests' fsx and fsstress inside a mount against the local server, the
# bucket then read with the AWS CLI (docs/exactness.md). Built outside this
# tree; when missing, the script says how to build them and fails.
FSX       ?= $(CURDIR)/../tools/xfstests/ltp/fsx
FSSTRESS  ?= $(CURDIR)/../tools/xfstests/ltp/fsstress
.PHONY: soak-fstools
soak-fstools: build tools
	./scripts/soak-fstools.sh "$(FSX)" "$(FSSTRESS)"

# POSIX conformance (docs/exactness.md): pjdfstest inside an
# `s3sync mount --allow-other` and inside go-fuse's loopback example, both
# built outside this tree. Needs root; not part of `make test`.
PJDFSTEST ?= $(CURDIR)/../pjdfstest
LOOPBACK  ?= $(CURDIR)/../tools/loopback
.PHONY: pjdfstest
pjdfstest: build tools
	@if [ ! -x "$(PJDFSTEST)/pjdfstest" ] || [ ! -x "$(LOOPBACK)" ]; then \
		echo "skipped: pjdfstest ($(PJDFSTEST)) or go-fuse's loopback ($(LOOPBACK)) not built, see docs/development.md"; \
	else \
		./scripts/pjdfstest.sh "$(PJDFSTEST)" "$(LOOPBACK)"; \
	fi

demo: build tools
	./scripts/demo.sh

bench: build tools
	./scripts/bench.sh

# A million files (BENCH_SCALE_FILES=100000 for a quicker run): reconcile
# against rclone, the mount's start-up, status and the journal at that size.
# Not part of bench: see docs/performance.md for how long it takes.
.PHONY: bench-scale
bench-scale: build tools
	./scripts/bench-scale.sh

lint:
	@test -z "$$(gofmt -l .)" || (echo "gofmt needed:"; gofmt -l .; exit 1)
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null; then staticcheck $(PKGS); else echo "staticcheck not installed; skipped"; fi

clean:
	rm -rf bin

.PHONY: install uninstall
install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(HELPERDIR) $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/s3sync
	ln -sfn $(BINDIR)/s3sync $(DESTDIR)$(HELPERDIR)/mount.s3sync
	sed 's|/usr/local/bin/s3sync|$(BINDIR)/s3sync|g' 'contrib/systemd/s3sync@.service' > '$(DESTDIR)$(UNITDIR)/s3sync@.service.tmp'
	chmod 0644 '$(DESTDIR)$(UNITDIR)/s3sync@.service.tmp'
	mv '$(DESTDIR)$(UNITDIR)/s3sync@.service.tmp' '$(DESTDIR)$(UNITDIR)/s3sync@.service'
	@echo "installed: $(BINDIR)/s3sync, $(HELPERDIR)/mount.s3sync, $(UNITDIR)/s3sync@.service (configure one in /etc/s3sync/NAME.conf: contrib/systemd/example.conf)"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/s3sync $(DESTDIR)$(HELPERDIR)/mount.s3sync '$(DESTDIR)$(UNITDIR)/s3sync@.service'
