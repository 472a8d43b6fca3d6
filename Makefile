# The two commands a newcomer runs are `make demo` and `make test`; both
# install what they need first (scripts/setup-host.sh, as root or with sudo).
BOARD ?= qemu-x86_64
GO ?= go
# QEMU boots under TCG take 5-20 s each; the suite runs about 25 of them.
TEST_TIMEOUT ?= 50m
# Fuzz budgets are input counts, not durations: with a duration, Go 1.26's
# fuzz coordinator can report a bare "context deadline exceeded" failure
# when its deadline races a busy worker (golang/go#75804, fixed in 1.27).
# 100000 inputs take 2-10 s per target here.
FUZZTIME ?= 100000x
# staticcheck, fetched through the Go module proxy at a fixed version.
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all setup demo test test-device unit vet fuzz bench initramfs dist clean

all: test

setup:
	./scripts/setup-host.sh

## demo: build the initramfs for $(BOARD) and boot a protected root in QEMU.
demo: setup
	$(GO) run ./cmd/ofsroot demo --board $(BOARD)

## test: everything CI runs: vet, unit and privileged tests, short fuzz
## runs, and the QEMU boot matrix. scripts/gotest prints what go test
## prints, then every skip with its reason; with CI set, a skip for a
## reason the CI machine could meet fails the run (internal/testenv).
test: setup vet fuzz
	$(GO) run ./scripts/gotest -timeout $(TEST_TIMEOUT) ./...

## test-device: the package's whole life on a Debian PC booted by its
## firmware from its own disk (tests/device_x86_test.go, TestDeviceX86):
## install, protected, overlay off/on, a kernel reinstalled, removal.
## About 10 minutes of QEMU on its own, so not in `make test` (CI's budget).
test-device: setup
	$(GO) run ./scripts/gotest -timeout $(TEST_TIMEOUT) -tags devicetest -run '^TestDeviceX86$$' ./tests

## unit: the tests that boot nothing (fast).
unit:
	$(GO) test $$($(GO) list ./... | grep -v /tests)

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...

## fuzz: a short run of each parser's fuzzer, on top of its seed corpus.
FUZZ_TARGETS = \
	pkg/cmdline:FuzzParse pkg/fstab:FuzzRewrite \
	pkg/blockdev:FuzzProbeFS pkg/blockdev:FuzzPartitions pkg/blockdev:FuzzResolve pkg/blockdev:FuzzUnescapeUdev \
	pkg/ubootenv:FuzzDecode pkg/ubootenv:FuzzDecodeRaw pkg/ubootenv:FuzzParseConfig pkg/ubootenv:FuzzParseText \
	pkg/uimage:FuzzDecode pkg/grubenv:FuzzParse pkg/kmod:FuzzModinfo internal/smalljson:FuzzUnmarshal

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; \
		echo "fuzz: $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test ./$$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME); \
	done

## bench: the initramfs stage (Run /init to the real init) of ofsroot, Debian's
## initramfs-tools + overlayroot and the bare kernel, interleaved boots
## (figures, no pass/fail), on the guest's clock (draws docs/bench-BOARD.svg)
## and on QEMU's instruction clock (--icount: load-independent, so fewer
## boots). BENCH_FLAGS adds e.g. --variants naive,strip or --extra "before=OLD.img".
BENCH_BOOTS ?= 10
BENCH_ICOUNT_BOOTS ?= 3
BENCH_FLAGS ?=
bench: setup
	$(GO) run ./cmd/ofsroot bench --boards qemu-x86_64 --peers --boots $(BENCH_BOOTS) $(BENCH_FLAGS) --svg docs/bench-qemu-x86_64.svg
	$(GO) run ./cmd/ofsroot bench --boards qemu-x86_64 --peers --icount --boots $(BENCH_ICOUNT_BOOTS) $(BENCH_FLAGS)
	$(GO) run ./cmd/ofsroot bench --boards sabrelite --boots $(BENCH_BOOTS) $(BENCH_FLAGS) --svg docs/bench-sabrelite.svg
	$(GO) run ./cmd/ofsroot bench --boards sabrelite --icount --boots $(BENCH_ICOUNT_BOOTS) $(BENCH_FLAGS)

## initramfs: build out/initramfs-$(BOARD).img from the cached Debian kernel.
initramfs:
	mkdir -p out
	$(GO) run ./cmd/ofsroot initramfs --board $(BOARD) --kernel $(KERNEL) --output out/initramfs-$(BOARD).img

## dist: a Debian package and a tarball per architecture (amd64, armhf,
## arm64) in out/dist, stamped with VERSION (default: git describe).
dist:
	VERSION=$(VERSION) ./dist/build.sh

clean:
	rm -rf out
