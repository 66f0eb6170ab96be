# monitoring/: Prometheus, Alertmanager, Grafana and Loki configuration, checked with the real
# promtool and amtool (Debian packages `prometheus` and `prometheus-alertmanager`, installed by
# scripts/monitoring/install-tools.sh when absent). See docs/operations/observability.md.
#
#   make monitoring-check        every monitoring check (its tests also run in `make test`)
#   make monitoring-dashboards   regenerate monitoring/grafana/dashboards/*.json

.PHONY: monitoring-tools monitoring-check monitoring-dashboards

monitoring-tools: ## promtool, prometheus and amtool (Debian packages) when absent
	@bash scripts/monitoring/install-tools.sh

monitoring-check: monitoring-tools install-dev ## promtool/amtool checks, rule unit tests, monitoring tests
	promtool check config monitoring/prometheus/prometheus.yml
	promtool check rules monitoring/prometheus/rules/*.yml
	promtool test rules monitoring/prometheus/tests/*.yml
	amtool check-config monitoring/alertmanager/alertmanager.yml
	$(BIN)/python scripts/monitoring/build_dashboards.py --check
	$(BIN)/python -m pytest tests/monitoring $(PYTEST_ARGS)

monitoring-dashboards: ## regenerate the Grafana dashboards from scripts/monitoring/build_dashboards.py
	$(PYTHON) scripts/monitoring/build_dashboards.py
