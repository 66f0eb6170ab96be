"""Durable jobs in the service's own database: enqueued with their cause, run at least once by
a worker in any process, retried with backoff, dead-lettered for an operator (ADR 0900)."""
