# Message catalogues of the hosted pages and emails (src/auth_service/i18n/locales).
.PHONY: i18n

i18n: install-dev ## extract translatable strings and update every catalogue
	$(BIN)/python scripts/i18n.py
