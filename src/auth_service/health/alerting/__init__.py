"""In-service alerting: severity, dedup key, cooldown, escalation tiers, resolve, channels."""
