"""The web's ordinary protections, as ASGI middleware on the server's app (passed to Gradio's
FastAPI app through ``launch(app_kwargs={"middleware": web_protections(...)})``):

- ``SecurityHeaders``: ``X-Content-Type-Options: nosniff``, a ``Referrer-Policy``, and unless
  framing is allowed (``--allow-framing``), ``X-Frame-Options: SAMEORIGIN`` with the CSP
  ``frame-ancestors 'self'``, on every HTTP response;
- ``LoginThrottle``: failed logins (``POST /login`` answered 400) are slowed per client address,
  and refused with 429 and ``Retry-After`` once ``limit`` have failed within ``window`` seconds; a
  right password before that still logs in and clears the address's count. The count
  (``FailedLogins``) is shared with the REST API's HTTP Basic and API-key checks
  (``s2s.rest``), so no door of the server lets a password be guessed faster than the page does.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any, Awaitable, Callable

from starlette.middleware import Middleware

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOGIN_PATHS = ("/login", "/login/")
MAX_TRACKED_ADDRESSES = 10_000  # bounded memory however many addresses try


class SecurityHeaders:
    def __init__(self, app: ASGIApp, allow_framing: bool = False) -> None:
        self.app = app
        self.headers = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]
        if not allow_framing:
            self.headers += [(b"x-frame-options", b"SAMEORIGIN"),
                             (b"content-security-policy", b"frame-ancestors 'self'")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in self.headers if name not in present]
            await send(message)

        await self.app(scope, receive, with_headers)


class FailedLogins:
    """Failed logins per client address, from every door: each failure slows the next try by
    ``delay`` seconds more (at most ``max_delay``), and ``limit`` failures within ``window``
    seconds refuse the address until the oldest is ``window`` old; a right login clears it.
    Bounded: at most ``MAX_TRACKED_ADDRESSES`` addresses are remembered."""

    def __init__(self, limit: int = 10, window: float = 60.0, delay: float = 0.25, max_delay: float = 2.0) -> None:
        self.limit, self.window, self.delay, self.max_delay = limit, window, delay, max_delay
        self.failures: collections.OrderedDict[str, list[float]] = collections.OrderedDict()

    def _recent(self, address: str, now: float) -> list[float]:
        recent = [t for t in self.failures.get(address, []) if now - t < self.window]
        if recent:
            self.failures[address] = recent
            self.failures.move_to_end(address)
        else:
            self.failures.pop(address, None)
        return recent

    def retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may try again, or None when it may now."""
        now = time.monotonic()
        recent = self._recent(address, now)
        return max(1, int(self.window - (now - recent[0])) + 1) if len(recent) >= self.limit else None

    async def slow_down(self, address: str) -> None:
        """Wait as long as the address's recent failures say."""
        await asyncio.sleep(min(self.max_delay, self.delay * len(self._recent(address, time.monotonic()))))

    def failed(self, address: str) -> None:
        self.failures.setdefault(address, []).append(time.monotonic())
        self.failures.move_to_end(address)
        while len(self.failures) > MAX_TRACKED_ADDRESSES:
            self.failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self.failures.pop(address, None)


def client_address(scope: Scope) -> str:
    return (scope.get("client") or ("unknown", 0))[0]


class LoginThrottle:
    def __init__(self, app: ASGIApp, failures: FailedLogins | None = None) -> None:
        self.app, self.failures = app, failures or FailedLogins()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in LOGIN_PATHS:
            await self.app(scope, receive, send)
            return
        address = client_address(scope)
        retry = self.failures.retry_after(address)
        if retry is not None:
            await send({"type": "http.response.start", "status": 429,
                        "headers": [(b"content-type", b"application/json"), (b"retry-after", str(retry).encode())]})
            await send({"type": "http.response.body",
                        "body": b'{"detail": "Too many failed logins from this address: try again later."}'})
            return
        await self.failures.slow_down(address)  # each failure slows the next try
        status = {}

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if status.get("code") == 400:
            self.failures.failed(address)
        elif status.get("code", 500) < 400:
            self.failures.succeeded(address)


def web_protections(allow_framing: bool = False, failures: FailedLogins | None = None) -> list[Middleware]:
    """The middleware list for the server's app; ``failures``: the count of failed logins the
    REST API shares."""
    return [Middleware(SecurityHeaders, allow_framing=allow_framing), Middleware(LoginThrottle, failures=failures)]
