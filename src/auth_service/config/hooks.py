"""Reload hooks: who takes a reloaded ``Settings``, and in which order.

Whatever holds settings registers a hook where it is wired: the service graph
(``Services.register_reload_hooks``) and the serving process (``runtime``). Hot reload hands
every configuration that validated to ``ReloadHooks.apply``, which guarantees:

- the hooks run one after another, in registration order, each with the same new ``Settings``;
- a hook registered ``when_changed`` runs only when that part of the settings differs from
  ``previous`` (the settings the process runs on until this reload is through);
- the first hook that raises stops the ones after it. Only the first registered hook may
  refuse a configuration (raise ``config.reload.ReloadRejected``), since then nothing has
  changed yet; every later hook is a reference swap that must not fail for settings that
  validated. That is why the database swap, the one step that can fail, registers first.

Synchronous hooks run without awaiting in between, so a request sees the old or the new
values of all of them; a coroutine hook yields, so register one first or last
(docs/adr/0203-reload-hooks-and-the-runtime-package.md).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from auth_service.config.settings import Settings

ReloadHook = Callable[[Settings], Awaitable[None] | None]
"""Takes the new settings; may be a coroutine function."""

Part = Callable[[Settings], object]
"""Selects the part of the settings a ``when_changed`` hook depends on."""


@dataclass(frozen=True)
class _Registration:
    name: str
    hook: ReloadHook
    when_changed: Part | None


class ReloadHooks:
    """The hooks of one process, in registration order (module docstring: the guarantees)."""

    def __init__(self) -> None:
        self._registered: list[_Registration] = []

    def register(self, name: str, hook: ReloadHook, *, when_changed: Part | None = None) -> None:
        """Add ``hook`` after those registered so far; ``name`` says what it updates."""
        if name in self.names:
            raise ValueError(f"a reload hook named {name!r} is registered already")
        self._registered.append(_Registration(name, hook, when_changed))

    @property
    def names(self) -> list[str]:
        return [r.name for r in self._registered]

    async def apply(self, new: Settings, *, previous: Settings) -> None:
        """Run the hooks in order; an exception stops the rest and propagates."""
        for registration in self._registered:
            part = registration.when_changed
            if part is not None and part(new) == part(previous):
                continue
            result = registration.hook(new)
            if inspect.isawaitable(result):
                await result
