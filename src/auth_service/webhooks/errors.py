"""Expected failures of the webhooks domain, each with its problem type."""

from __future__ import annotations

from auth_service.problems import ServiceError, field_errors, problem


class WebhookError(ServiceError):
    """Base of the webhooks domain's expected failures."""


@problem(404, "webhook-not-found", "No such webhook subscription")
class WebhookNotFound(WebhookError):
    """Admin webhook routes: no subscription with this id."""


@problem(422, "invalid-webhook", "The webhook subscription is not valid")
class InvalidWebhook(WebhookError):
    """A field of a subscription is refused (a target URL that is not https, resolves to a
    private address or does not resolve; an event type the audit catalogue does not have);
    ``errors`` says which field and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def extensions(self) -> dict[str, object]:
        return field_errors(self.field, [self.reason])


class TargetRefused(Exception):
    """A delivery's target is not allowed (scheme, address): the message says why; no
    request was sent."""
