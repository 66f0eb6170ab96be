# Deployment artefacts: container image, Compose stack, Helm chart, Kubernetes manifests.
# Validation tools live in .tools/ (gitignored) and are installed by scripts/deploy/install-tools.sh
# on first use, so a clean clone (and CI) brings its own. See docs/deployment.md.
#
#   make deploy-check   every deployment check (what CI runs)
#   make k8s            re-render k8s/ from the chart after changing it
#   make helm-sync      copy monitoring/ rules and dashboards into the chart after changing them

DEPLOY_TOOLS  := .tools
DEPLOY_BIN    := $(DEPLOY_TOOLS)/bin
DEPLOY_PY     := $(DEPLOY_TOOLS)/venv/bin/python
HELM          := $(DEPLOY_BIN)/helm
KUBECTL       := $(DEPLOY_BIN)/kubectl
CHART         := helm/auth-service
CHART_VALUES  := values.yaml values-dev.yaml values-staging.yaml values-production.yaml
# Overlays of values-production.yaml (rendered as `-f values-production.yaml -f <overlay>`):
# a mesh, CloudNativePG (one region, then the replica region), the DR observers.
CHART_OVERLAYS := values-tls.yaml values-mesh-istio.yaml values-mesh-linkerd.yaml values-cnpg.yaml values-cnpg-replica.yaml values-dr-watch.yaml
RENDER_DIR    := $(DEPLOY_TOOLS)/rendered
# The oldest Kubernetes minor the chart supports and is validated against.
K8S_VERSION   ?= 1.30.0
DEPLOY_NS     := auth

.PHONY: deploy-tools helm-sync helm-sync-check helm-lint helm-render k8s k8s-check \
        k8s-validate crd-validate checkov hadolint compose-check deploy-check compose-secrets

deploy-tools: ## install helm, checkov, kubernetes-validate, hadolint, dclint, CRD schemas into .tools/
	@bash scripts/deploy/install-tools.sh

helm-sync: ## copy monitoring/ rules and dashboards into the Helm chart
	@python3 scripts/deploy/helm_sync.py

helm-sync-check:
	@python3 scripts/deploy/helm_sync.py --check

helm-lint: deploy-tools
	@for v in $(CHART_VALUES); do \
	  echo "helm lint --strict -f $$v"; \
	  $(HELM) lint --strict --quiet $(CHART) --namespace $(DEPLOY_NS) -f $(CHART)/$$v || exit 1; \
	done
	@for v in $(CHART_OVERLAYS); do \
	  echo "helm lint --strict -f values-production.yaml -f $$v"; \
	  $(HELM) lint --strict --quiet $(CHART) --namespace $(DEPLOY_NS) \
	    -f $(CHART)/values-production.yaml -f $(CHART)/$$v || exit 1; \
	done

helm-render: deploy-tools
	@rm -rf $(RENDER_DIR) && mkdir -p $(RENDER_DIR)
	@for v in $(CHART_VALUES); do \
	  $(HELM) template auth-service $(CHART) --namespace $(DEPLOY_NS) -f $(CHART)/$$v \
	    > $(RENDER_DIR)/$${v%.yaml}.yaml || exit 1; \
	done
	@for v in $(CHART_OVERLAYS); do \
	  $(HELM) template auth-service $(CHART) --namespace $(DEPLOY_NS) \
	    -f $(CHART)/values-production.yaml -f $(CHART)/$$v > $(RENDER_DIR)/$${v%.yaml}.yaml || exit 1; \
	done
	@echo "helm template: rendered $(CHART_VALUES) $(CHART_OVERLAYS) into $(RENDER_DIR)/"

k8s: deploy-tools helm-sync ## render k8s/ from the chart with the production values
	@$(DEPLOY_PY) scripts/deploy/render_k8s.py

k8s-check: deploy-tools
	@$(DEPLOY_PY) scripts/deploy/render_k8s.py --check
	@$(KUBECTL) kustomize k8s >/dev/null && $(KUBECTL) kustomize k8s/monitoring >/dev/null
	@echo "kubectl kustomize: k8s/ and k8s/monitoring/ build"

# Every rendered object against the OpenAPI schemas of K8S_VERSION (strict: unknown fields
# fail). Prometheus Operator objects have no schema there and are reported as warnings; their
# content is checked by tests/deploy.
k8s-validate: helm-render
	@$(DEPLOY_BIN)/kubernetes-validate --kubernetes-version $(K8S_VERSION) --strict --quiet \
	  $(RENDER_DIR)/*.yaml k8s/namespace.yaml k8s/auth-service.yaml
	@echo "kubernetes-validate: all objects valid for Kubernetes $(K8S_VERSION)"

# Custom resources (cert-manager, Istio, Prometheus Operator: npm's @kubernetes-models schemas;
# CloudNativePG: our schema of the fields we set, scripts/deploy/schemas/). Unknown kinds fail.
crd-validate: helm-render
	@$(DEPLOY_PY) scripts/deploy/validate_crds.py $(RENDER_DIR)/*.yaml k8s/monitoring/*.yaml

# Zero failed checks; each skip is inline with its reason (`checkov.io/skipN` annotations on the
# objects, `# checkov:skip=` comments in files). The secrets scan covers the sources only: the
# renders of the dev/default values contain secrets the chart generated on purpose.
CHECKOV = HELM_NAMESPACE=$(DEPLOY_NS) PATH="$(CURDIR)/$(DEPLOY_BIN):$$PATH" \
          $(DEPLOY_BIN)/checkov --quiet --compact --skip-download
checkov: helm-render
	@$(CHECKOV) --framework helm -d $(CHART)
	@$(CHECKOV) --framework kubernetes -d $(RENDER_DIR)
	@$(CHECKOV) --framework kubernetes -d k8s
	@$(CHECKOV) --framework dockerfile -f Dockerfile
	@$(CHECKOV) --framework secrets -d $(CHART) -d k8s -d docker -f compose.yaml -f Dockerfile

hadolint: deploy-tools
	@$(DEPLOY_BIN)/hadolint Dockerfile && echo "hadolint: Dockerfile clean"

compose-check: deploy-tools
	@$(DEPLOY_BIN)/dclint --config docker/dclint.yaml --max-warnings 0 compose.yaml && \
	  echo "dclint: compose.yaml valid against the Compose Specification schema"

deploy-check: helm-sync-check helm-lint k8s-check k8s-validate crd-validate checkov hadolint compose-check ## all deployment validation (CI)
	@echo "deploy-check: OK"

compose-secrets: ## create the local secrets compose.yaml mounts (var/compose/secrets)
	@sh docker/gen-secrets.sh
