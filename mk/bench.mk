# Benchmarks (bench/README.md): production-mode service on local PostgreSQL and Redis, driven
# by wrk. Not part of `make test`. Knobs: BENCH_DURATION, BENCH_USERS, BENCH_WORKERS,
# BENCH_SCENARIOS, BENCH_PROFILE, BENCH_SOAK (see bench/run.py).
.PHONY: bench bench-forgot bench-profile bench-tools bench-oidc

$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet --editable '.[bench]'
	@touch $@ $(VENV)/.run-installed

bench-tools: $(VENV)/.bench-installed ## wrk (Debian) and the bench extra (matplotlib, py-spy)
	@command -v wrk >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y wrk || { $$SUDO apt-get update && $$SUDO apt-get install -y wrk; }; }

bench: bench-tools install-dev ## benchmark into bench/results/<date>/ (~11 min; BENCH_DURATION=15 s per scenario)
	$(BIN)/python bench/run.py
	@# DPoP-bound GET /v1/users/me beside the plain bearer one (bench/api_dpop.py: the proofs
	@# are signed in Python, which wrk's Lua cannot do); uses the test suite's live server.
	AUTH_TEST_REDIS_DB=$${BENCH_REDIS_DB:-13} $(BIN)/python -m bench.api_dpop $${BENCH_DPOP_REQUESTS:-300}

bench-profile: bench-tools ## py-spy profiles of one worker during login, refresh and me
	BENCH_PROFILE=1 BENCH_SCENARIOS=$${BENCH_SCENARIOS:-me,login,refresh} \
	  BENCH_OUT=$${BENCH_OUT:-bench/results/profile} $(BIN)/python bench/run.py

bench-forgot: bench-tools ## forgot-password medians, address with/without an account, PostgreSQL (~2 min)
	BENCH_SCENARIOS=forgot BENCH_USERS=$${BENCH_USERS:-10000} BENCH_DURATION=$${BENCH_DURATION:-60} \
	  BENCH_OUT=$${BENCH_OUT:-bench/results/forgot} $(BIN)/python bench/run.py

bench-oidc: bench-tools ## auth-service vs panva's oidc-provider 9: client_credentials, introspection, refresh (~4 min)
	@[ -f tests/harness/node_modules/oidc-provider/package.json ] || bash scripts/install-test-deps.sh
	$(BIN)/python bench/oidc/run.py
