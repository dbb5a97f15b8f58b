# shala — run `make help` for the targets.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: help run test lint bench bench-listing build seed tools e2e fmt deps readme

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

run: deps ## local default: Postgres under .data/, dev secret, migrate, serve on 127.0.0.1:8080
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/shala ./cmd/shala
	exec bin/shala dev

test: tools ## the whole suite: formatting, vet (e2e included), every test against real Postgres
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/...
	$(GO) test -count=1 -timeout 10m ./...

lint: ## staticcheck (pinned)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags e2e ./e2e/...

bench: tools ## benchmarks: event acks and OpenRosa ingestion vs the durable INSERT ceiling; 100k SMS fan-out vs River no-op jobs; Sheets backlog and 1M-row CSV export; exam uploads and expiry vs raw fileblob; certificates/s vs blank pages
	$(GO) run ./bench/events
	$(GO) run ./bench/sms
	$(GO) run ./bench/forms
	$(GO) run ./bench/lessons
	$(GO) run ./bench/exports
	$(GO) run ./bench/certificates
	$(GO) run ./bench/exams

bench-listing: tools ## state-scale listing bench: loads 18,000 schools / 30 M results (≈20 GB free disk, ~15 min), then reads and writes
	$(GO) run ./bench/listing

build: ## build bin/shala
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/shala ./cmd/shala

seed: ## fill the local database with the demo district (needs DATABASE_URL, or use after `make run` with its URL)
	$(GO) run ./cmd/shala seed --demo

e2e: ## end-to-end suite against `docker compose up` (needs Docker)
	$(GO) test -count=1 -tags e2e ./e2e/...

deps: ## Debian packages for certificate PDFs (chromium) and their tests (poppler-utils), when missing
	@./.ci/deps.sh

tools: ## install promtool and wrk into .tools (unpacked from Debian packages, no root)
	@./.ci/tools.sh

readme: ## rewrite README.md's configuration table from internal/config (after changing a variable)
	$(GO) run ./internal/config/readme

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')
