# API fuzzing alone (it also runs in `make test`): schemathesis against a real server on SQLite
# and PostgreSQL, tests/integration/fuzz/.
.PHONY: fuzz
fuzz: install-dev ## schemathesis over the OpenAPI document, against a real server
	$(BIN)/python -m pytest tests/integration/fuzz $(PYTEST_ARGS)
