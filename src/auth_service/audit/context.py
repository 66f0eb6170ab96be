"""Who is asking, from where: carried from the HTTP edge into services and audit events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    actor_user_id: uuid.UUID | None = None

    def with_actor(self, actor: uuid.UUID) -> RequestContext:
        return RequestContext(self.ip, self.user_agent, self.request_id, actor)


SYSTEM = RequestContext(request_id="system")
