# Hosted pages: the screenshot gallery of docs/ui.md (not part of CI: it rewrites docs/images).
.PHONY: screenshots

screenshots: install-dev ## screenshots of every page (desktop/phone, light/dark) into docs/images
	bash scripts/install-test-deps.sh
	$(BIN)/python scripts/screenshots.py
