"""Configuration as code: a realm file declares the default tenant's roles, clients,
connectors, webhook subscriptions and bootstrap admins; ``apply`` makes the database match it
through the domain services, ``export`` writes the database back as a file (ADR 0930)."""
