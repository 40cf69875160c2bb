# The two commands a person needs. Everything else lives in scripts/.
.PHONY: run test check setup web soak bench bench-live

run:   ## install what is missing, build the widget, serve on http://127.0.0.1:8080
	@scripts/run.sh

test:  ## install what is missing, then run every check
	@scripts/test.sh

check: ## the fast inner loop: fmt, clippy (host), core and server tests
	@scripts/check.sh

setup:
	@scripts/setup.sh

web:
	@scripts/build-web.sh

soak:  ## a long deterministic simulation of the client session
	OPTRAIL_SIM_SCHEDULES=$${OPTRAIL_SIM_SCHEDULES:-200000} cargo test --release -p optrail-core --test simulation -- --nocapture

bench: ## EventLog throughput against a naive baseline
	cargo bench -p optrail-core --bench event_log

bench-live: ## the release widget against a plain JS page, live at 100 000 events (BENCHMARKS.md)
	@scripts/setup.sh
	@scripts/build-web.sh
	cargo build --release -p optrail-server --bin optrail-server
	OPTRAIL_SERVER_BIN=$(CURDIR)/target/release/optrail-server cargo bench -p optrail-e2e --bench live
