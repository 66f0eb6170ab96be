"""Lifecycle webhooks: subscriptions to audit event types, signed deliveries over jobs/."""
