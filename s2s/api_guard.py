"""The API's door (ASGI middleware for its paths; the page mounted under the same app has its own
rules): a request body counted and timed as it streams in (413 over ``MAX_BODY_BYTES``, with or
without a Content-Length; 408 when not sent within ``BODY_READ_TIMEOUT`` seconds; 400 with both
Content-Length and Transfer-Encoding), the logins (HTTP Basic, or an API key) with the throttle of
failed tries shared with the page (``s2s.web_guard.FailedLogins``), and the metrics of every
request. Refusals come in the shape of the route's API: ``{"error"}`` on LibreTranslate's
routes, ``{"detail"}`` elsewhere."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import Any
from urllib.parse import parse_qs

from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from .libretranslate import LIBRE_PATHS, error_response
from .logins import is_api_key, is_login
from .web_guard import FailedLogins, client_address

MAX_BODY_BYTES = 2**20
BODY_READ_TIMEOUT = 30.0  # seconds to send a whole request body
API_PATHS = ("/v1/", "/metrics", "/healthz") + LIBRE_PATHS
PUBLIC_PATHS = ("/healthz", "/languages", "/frontend/settings")  # no login: as LibreTranslate's, they tell no secret


def detail_response(status: int, message: str, field: str | None = None,
                    headers: dict[str, str] | None = None) -> JSONResponse:
    """``{"detail": message}``; a 422 in FastAPI's documented shape, a list of errors with the
    field where there is one (``["body", field]``), else the body (``["body"]``)."""
    detail: Any = message if status != 422 else \
        [{"loc": ["body"] + ([field] if field else []), "msg": message, "type": "value_error"}]
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def is_libre(path: str) -> bool:
    return path in LIBRE_PATHS


def refusal_response(path: str, status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An answer in the shape of the route's API: ``{"error"}`` on LibreTranslate's, else ``{"detail"}``."""
    if is_libre(path):
        return error_response(status, message, headers)
    return detail_response(status, message, headers=headers)


class BodyTooLarge(HTTPException):
    """A request body passed ``MAX_BODY_BYTES`` while it was read (an HTTPException, so that the
    body readers of FastAPI and Starlette hand it on as it is)."""

    def __init__(self) -> None:
        super().__init__(413, f"the request body is over {MAX_BODY_BYTES // 2**20} MB")


class BodyTimeout(HTTPException):
    """A request body was not sent within ``BODY_READ_TIMEOUT`` seconds."""

    def __init__(self) -> None:
        super().__init__(408, "the request body was not sent in time")


class ApiGuard:
    """ASGI middleware for the API's paths (the page mounted under the same app has its own rules):
    the body limit and read timeout as the body streams in, the logins (HTTP Basic, or an API key
    as the ``api_key`` query parameter; LibreTranslate's routes also read it from the body) with
    the shared throttle of failed tries, and the metrics of every request."""

    def __init__(self, app: Any, metrics: Any, logins: list[tuple[str, str]] | None, api_keys: list[str] | None,
                 failures: FailedLogins) -> None:
        self.app, self.metrics, self.logins, self.api_keys, self.failures = app, metrics, logins, api_keys, failures

    def _logged_in(self, scope: dict[str, Any], headers: dict[bytes, bytes]) -> bool:
        header = headers.get(b"authorization", b"").decode("latin-1")
        if header.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return is_login(user, password, self.logins)
        key = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("api_key", [None])[0]
        return is_api_key(key, self.api_keys)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(API_PATHS):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def counted_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            response = await self._refused_by_headers(scope, path)
            if response is not None:
                await response(scope, receive, counted_send)
            else:
                await self._answer(scope, receive, counted_send, path)
        finally:
            if scope.get("state", {}).get("failed_login"):  # a wrong api_key in a LibreTranslate body
                self.failures.failed(client_address(scope))
            name = getattr(scope.get("route"), "path", "other")
            self.metrics.requests.labels(name, str(status["code"])).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - started)

    async def _refused_by_headers(self, scope: dict[str, Any], path: str) -> Response | None:
        """The answer to a request refused from its headers alone, or None."""
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        if length is not None and b"transfer-encoding" in headers:
            return refusal_response(path, 400, "a request may not have both Content-Length and Transfer-Encoding")
        if length is not None and not length.isdigit():
            return refusal_response(path, 400, "the Content-Length header is not a number")
        if length is not None and int(length) > MAX_BODY_BYTES:
            return refusal_response(path, 413, f"the request body is over {MAX_BODY_BYTES // 2**20} MB")
        scope.setdefault("state", {})["needs_key"] = False
        if (self.logins or self.api_keys) and path not in PUBLIC_PATHS:
            address = client_address(scope)
            retry = self.failures.retry_after(address)
            if retry is not None:
                return refusal_response(path, 429, "Slowdown: too many failed logins from this address; try "
                                        "again later", {"Retry-After": str(retry)})
            if self._logged_in(scope, headers):
                self.failures.succeeded(address)
            elif path in ("/translate", "/detect") and self.api_keys:
                scope["state"]["needs_key"] = True  # LibreTranslate's routes read api_key from the body
            else:
                if b"authorization" in headers or b"api_key=" in scope.get("query_string", b""):
                    self.failures.failed(address)  # a wrong login, not a missing one (a browser's first try)
                await self.failures.slow_down(address)
                if is_libre(path):
                    return error_response(403, "Invalid API key (or log in with HTTP Basic)")
                return detail_response(401, "log in (HTTP Basic, or ?api_key=) with one of the server's logins",
                              headers={"WWW-Authenticate": 'Basic realm="s2s"'})
        return None

    async def _answer(self, scope: dict[str, Any], receive: Any, send: Any, path: str) -> None:
        """Run the app with the body counted and timed as it is read; a body over the limit or
        too slow is answered 413 or 408 (when no answer has started)."""
        read = {"bytes": 0, "done": False}
        started = {"response": False}

        async def limited_receive() -> dict[str, Any]:
            if read["done"]:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), BODY_READ_TIMEOUT)
            except asyncio.TimeoutError:
                raise BodyTimeout() from None
            if message["type"] == "http.request":
                read["bytes"] += len(message.get("body", b""))
                if read["bytes"] > MAX_BODY_BYTES:
                    raise BodyTooLarge()
                read["done"] = not message.get("more_body", False)
            return message

        async def watched_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started["response"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except (BodyTooLarge, BodyTimeout) as error:  # read outside a route (the routes' handler answers)
            if started["response"]:
                raise
            await refusal_response(path, error.status_code, error.detail)(scope, receive, send)
