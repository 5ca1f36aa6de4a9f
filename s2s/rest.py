"""A plain REST API for programs (FastAPI): stateless, batched, documented by OpenAPI, and
speaking LibreTranslate's routes so that existing translation clients work unchanged.

- ``POST /v1/translate`` (one text or a list of up to ``MAX_TEXTS``, the model, every
  ``DecodeSettings`` field by name with its default and range), ``GET /v1/models``, and the
  what-if questions ``POST /v1/alternatives``, ``/v1/redecode``, ``/v1/override``,
  ``/v1/saliency``, ``/v1/score``, ``/v1/neighbours``: the same JSON as the Python API; schema at
  ``/v1/openapi.json``, interactive docs at ``/v1/docs`` (Swagger UI served from the package:
  it works offline).
- LibreTranslate (``s2s.libretranslate``): ``/translate``, ``/detect``, ``/languages``,
  ``/frontend/settings``.
- ``GET /healthz``, ``GET /metrics`` (Prometheus).

Nothing blocks the event loop: every model call runs on a worker thread of the API's own
(``API_THREADS``, beside the page's), so ``/healthz`` and the page answer while the API decodes;
beyond ``MAX_WAITING`` calls waiting for a thread a call is told the server is busy.
``ApiGuard`` reads every API request's body as it arrives: over ``MAX_BODY_BYTES`` (with or
without a Content-Length) it is refused with 413, a body not sent within ``BODY_READ_TIMEOUT``
seconds with 408, a request with both Content-Length and Transfer-Encoding with 400. With logins
(HTTP Basic) or API keys set, every route but ``PUBLIC_PATHS`` asks for one, and failed tries are
throttled per address with the page's login (``s2s.web_guard.FailedLogins``).

Every request goes through ``s2s.service`` (the batcher decodes concurrent calls together; the
gate admits by cost). Errors: a bad request 422 naming the field, an unknown model 404 naming the
models there are, a busy server 503 with ``Retry-After``, without the login 401 (LibreTranslate's
routes: ``{"error"}`` with 400, 403, 413, 429 and 500); anything else is logged with its
traceback and answered 500 with an id. ``create_app`` builds the app (``app.py`` mounts the page
under it); ``python -m s2s serve`` runs it alone, any number of workers or replicas, as nothing is
kept between requests.
"""

from __future__ import annotations

import functools
import logging
import os
import uuid
from typing import Annotated, Any, Callable, Literal, Optional, Union

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST, ProcessCollector
from pydantic import BaseModel, ConfigDict, Field, create_model

from . import schema
from .admission import Busy
from .api_guard import API_PATHS, MAX_BODY_BYTES, ApiGuard, detail_response, is_libre, refusal_response
from .libretranslate import LibreError, add_libretranslate, error_response
from .neighbours import DEFAULT_NEIGHBOURS, MAX_NEIGHBOURS
from .saliency import DEFAULT_STEPS, MAX_STEPS, METHODS
from .translator import MAX_TARGET_LEN
from .service import DEFAULT_MODEL, MAX_TEXTS, RequestError, Service, SettingError, UnknownModel, settings_from
from .web_guard import FailedLogins, web_protections

LOG = logging.getLogger(__name__)
API_THREADS = 32  # API calls doing blocking work at once (the page has its own threads)
MAX_WAITING = 256  # API calls waiting for a thread; beyond them a call is told the server is busy
HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
SETTINGS = schema.settings_fields()
Texts = Union[str, Annotated[list[str], Field(min_length=1, max_length=MAX_TEXTS)]]
OutputIds = Annotated[list[int], Field(min_length=1, max_length=MAX_TARGET_LEN,
                                       description="an output's piece ids (null: the model's best output)")]


def _request_model(name: str, doc: str, fields: dict[str, Any], example: dict[str, Any]) -> type[BaseModel]:
    """A request body: ``fields`` and then every decoding setting with its default. Strict: a value
    of another JSON type than the schema says (``false`` for an integer, ``"5"`` for a number) is
    refused with 422, not converted (found by fuzzing the schema, tests/test_rest_fuzz.py)."""
    return create_model(name, __doc__=doc, __config__=ConfigDict(extra="forbid", strict=True,
                                                                json_schema_extra={"examples": [example]}),
                        **fields, **SETTINGS)


TranslateRequest = _request_model(
    "TranslateRequest", "Translate one text (answered with one result) or a list (a list of results, in order).",
    {"model": (str, DEFAULT_MODEL), "text": (Texts, Field(..., description=f"a text, or a list of at most {MAX_TEXTS}"))},
    {"model": "en-fr", "text": "Where is the station?", "beam_size": 5})
AlternativesRequest = _request_model(
    "AlternativesRequest", "The best output of the text's first sentence with the model's top pieces at each position.",
    {"model": (str, DEFAULT_MODEL), "text": (str, ...)}, {"model": "en-fr", "text": "The cat sleeps."})
RedecodeRequest = _request_model(
    "RedecodeRequest", "Put a piece id or a typed word (empty: the runner-up piece) at an output position of `ids` "
    "(null: the best output) and decode the rest.",
    {"model": (str, DEFAULT_MODEL), "text": (str, ...), "position": (int, 1),
     "replacement": (Union[int, str], ""), "ids": (Optional[OutputIds], None)},
    {"model": "en-fr", "text": "The cat sleeps.", "position": 1, "replacement": "chien"})
OverrideRequest = _request_model(
    "OverrideRequest", "At output `step`, the decoder looks where `weights` say (one per source piece, </s> "
    "included), or evenly over the source pieces `steer`, or evenly over all; the rest is decoded again.",
    {"model": (str, DEFAULT_MODEL), "text": (str, ...), "step": (int, 0), "weights": (Optional[list[float]], None),
     "steer": (Optional[list[int]], None), "ids": (Optional[OutputIds], None)},
    {"model": "en-fr", "text": "The cat sleeps.", "step": 1, "steer": [0]})
ScoreRequest = _request_model(
    "ScoreRequest", "The model's score of a person's translation of the text's first sentence, beside its own best.",
    {"model": (str, DEFAULT_MODEL), "text": (str, ...), "target": (str, ...)},
    {"model": "en-fr", "text": "The cat sleeps.", "target": "Le chat dort."})


class SaliencyRequest(BaseModel):
    """Gradient attributions of `ids` (null: the best output) to the source, beside its attention."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"model": "en-fr", "text": "The cat sleeps.", "method": "input_x_gradient"}]})
    model: str = DEFAULT_MODEL
    text: str
    ids: Optional[OutputIds] = None
    method: Literal[METHODS] = "integrated_gradients"  # type: ignore[valid-type]
    steps: int = Field(DEFAULT_STEPS, ge=2, le=MAX_STEPS, description="integrated gradients' steps")


class NeighboursRequest(BaseModel):
    """The training pieces nearest piece `position` of the source or of `ids` (null: the best
    output), by the model's hidden states (needs the model's neighbour index)."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"model": "en-fr", "text": "The cat sleeps.", "side": "output", "position": 1, "k": 10}]})
    model: str = DEFAULT_MODEL
    text: str
    ids: Optional[OutputIds] = None
    side: Literal["source", "output"] = "output"
    position: int = Field(0, description="piece index on that side (not </s>)")
    k: int = Field(DEFAULT_NEIGHBOURS, ge=1, le=MAX_NEIGHBOURS, description="how many neighbours")


def _settings(body: BaseModel) -> Any:
    return settings_from({name: getattr(body, name) for name in SETTINGS})


class Problem(BaseModel):
    """An error of the ``/v1/`` routes other than 422: what went wrong, for a person to read."""

    detail: str


class LibreProblem(BaseModel):
    """An error of LibreTranslate's routes, in LibreTranslate's shape."""

    error: str


V1_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description} for status, description in (
        (400, "a malformed request (Content-Length, a body nested too deeply)"),
        (401, "no valid login (HTTP Basic, or ?api_key=)"), (404, "no such model"),
        (408, "the body was not sent in time"), (413, "the body is over 1 MB"),
        (429, "too many failed logins from this address"), (503, "the server is busy: retry after Retry-After"))}
LIBRE_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": LibreProblem, "description": description} for status, description in (
        (400, "a bad request"), (403, "no valid API key or login"), (408, "the body was not sent in time"),
        (413, "the body is over 1 MB"), (429, "Slowdown: busy, or too many failed logins"), (500, "a bug"))}


class Metrics:
    """Requests by route and status, latency by route, resident memory; one registry per app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter("s2s_requests", "requests answered", ["route", "status"], registry=self.registry)
        self.latency = Histogram("s2s_request_seconds", "time to answer", ["route"], registry=self.registry,
                                 buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.texts = Histogram("s2s_texts_per_request", "texts in a translate request", registry=self.registry,
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128))


class Api:
    """Blocking work of the API's routes, run on the API's own threads (``API_THREADS``), never on
    the event loop; beyond ``MAX_WAITING`` waiting calls, ``Busy``."""

    def __init__(self) -> None:
        self.limiter = anyio.CapacityLimiter(API_THREADS)

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        if self.limiter.statistics().tasks_waiting >= MAX_WAITING:
            raise Busy("API", message="Slowdown: the server is busy with other requests; try again in a few seconds.")
        return await anyio.to_thread.run_sync(functools.partial(function, *args), limiter=self.limiter)


def create_app(service: Service, logins: list[tuple[str, str]] | None = None, middleware: list | None = None,
               api_keys: list[str] | None = None, failures: FailedLogins | None = None) -> FastAPI:
    """The REST API over ``service``; with ``logins`` (HTTP Basic) or ``api_keys`` every route but
    ``PUBLIC_PATHS`` asks for one. ``failures``: the failed-login count it shares with the page."""
    failures = failures or FailedLogins()
    app = FastAPI(title="s2s explorer API", version="1", docs_url=None, openapi_url="/v1/openapi.json",
                  redoc_url=None, middleware=middleware if middleware is not None else web_protections(),
                  description="Translate and ask the models why, over plain HTTP. See the README's REST API section.")
    metrics, api = Metrics(), Api()
    app.add_middleware(ApiGuard, metrics=metrics, logins=logins, api_keys=api_keys, failures=failures)
    _add_error_handlers(app)
    v1 = _v1_routes(service, metrics, api)
    app.include_router(v1)
    _add_operations(app, service, metrics)
    _add_docs(app)

    def requires_key(request: Request) -> bool:
        return bool(request.scope.get("state", {}).get("needs_key"))

    add_libretranslate(app, service, api.run, api_keys, requires_key, MAX_BODY_BYTES, LIBRE_ERRORS)
    _add_wrong_method_answers(app, [*app.routes, *v1.routes])
    return app


def _not_allowed(allow: str) -> Callable[[], Any]:
    async def answer() -> JSONResponse:
        return JSONResponse({"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": allow})
    return answer


def _add_wrong_method_answers(app: FastAPI, routes: list[Any]) -> None:
    """A known API path asked with another method is answered 405 with ``Allow``, and an unknown
    ``/v1/`` path 404, here rather than by whatever app is mounted under this one (``app.py``
    mounts the page at "", which would answer both with its own 404)."""
    methods: dict[str, set[str]] = {}
    for route in routes:
        if isinstance(route, APIRoute) and route.path.startswith(API_PATHS):
            methods.setdefault(route.path, set()).update(route.methods)
    for path, allowed in methods.items():
        app.add_api_route(path, _not_allowed(", ".join(sorted(allowed))), methods=sorted(HTTP_METHODS - allowed),
                          include_in_schema=False)

    @app.api_route("/v1/{path:path}", methods=sorted(HTTP_METHODS), include_in_schema=False)
    async def unknown(path: str) -> JSONResponse:
        return JSONResponse({"detail": "Not Found"}, status_code=404)


def _add_error_handlers(app: FastAPI) -> None:
    """RequestError -> 422 (404 for an unknown model), Busy -> 503 with Retry-After, a body nested
    too deeply -> 400, anything else -> logged and 500 with an id; LibreTranslate's routes answer
    ``{"error"}`` with 400, 429 and 500 instead."""
    @app.exception_handler(LibreError)
    async def libre_error(request: Request, error: LibreError) -> JSONResponse:
        return error_response(error.status, str(error))

    @app.exception_handler(RequestError)
    async def bad_request(request: Request, error: RequestError) -> JSONResponse:
        if is_libre(request.url.path):
            return error_response(400, str(error))
        if isinstance(error, UnknownModel):
            return detail_response(404, str(error))
        return detail_response(422, str(error), error.field if isinstance(error, SettingError) else None)

    @app.exception_handler(Busy)
    async def busy(request: Request, error: Busy) -> JSONResponse:
        headers = {"Retry-After": str(error.retry_after)}
        if is_libre(request.url.path):
            message = str(error) if str(error).startswith("Slowdown") else f"Slowdown: {error}"
            return error_response(429, message, headers)
        return JSONResponse({"detail": str(error), "error": str(error)}, status_code=503, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        """FastAPI's 422 without the ``input`` it would echo back (50,000 texts, say)."""
        details = [{key: value for key, value in item.items() if key != "input"} for item in error.errors()[:20]]
        return JSONResponse({"detail": jsonable_encoder(details)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return refusal_response(request.url.path, error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(RecursionError)
    async def nested(request: Request, error: RecursionError) -> JSONResponse:
        return refusal_response(request.url.path, 400, "the request body is nested too deeply")

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:8]
        LOG.exception("%s %s failed (error %s)", request.method, request.url.path, incident, exc_info=error)
        if is_libre(request.url.path):
            return error_response(500, f"internal error {incident}; it is in the server's log")
        return JSONResponse({"detail": "internal error; it is in the server's log", "id": incident}, status_code=500)


def _v1_routes(service: Service, metrics: Metrics, api: Api) -> APIRouter:
    """``/v1/``: translate, models and the what-if questions, thin over ``service``, each run
    off the event loop (``api.run``)."""
    v1 = APIRouter(prefix="/v1", tags=["s2s"], responses=V1_ERRORS)

    @v1.post("/translate", response_model=Union[schema.Result, list[schema.Result]])
    async def translate(body: TranslateRequest) -> Any:  # type: ignore[valid-type]
        """Every sentence with its hypotheses, scores, attention and beam trace (`s2s.Translator.translate`)."""
        texts = [body.text] if isinstance(body.text, str) else body.text
        metrics.texts.observe(len(texts))
        results = await api.run(service.translate, body.model, texts, _settings(body))
        return results[0] if isinstance(body.text, str) else results

    @v1.get("/models")
    async def models() -> list[dict[str, Any]]:
        """Every model: name, language pair, card summary, architecture."""
        return await api.run(service.models)

    @v1.post("/alternatives", response_model=schema.Alternatives)
    async def alternatives(body: AlternativesRequest) -> Any:  # type: ignore[valid-type]
        return await api.run(service.alternatives, body.model, body.text, _settings(body))

    @v1.post("/redecode", response_model=schema.Sentence)
    async def redecode(body: RedecodeRequest) -> Any:  # type: ignore[valid-type]
        return await api.run(functools.partial(service.redecode, body.model, body.text, _settings(body), ids=body.ids,
                                               position=body.position, replacement=body.replacement))

    @v1.post("/override", response_model=schema.Sentence)
    async def override(body: OverrideRequest) -> Any:  # type: ignore[valid-type]
        return await api.run(functools.partial(service.override, body.model, body.text, _settings(body), ids=body.ids,
                                               step=body.step, weights=body.weights, steer=body.steer))

    @v1.post("/saliency", response_model=schema.Saliency)
    async def saliency(body: SaliencyRequest) -> Any:
        return await api.run(functools.partial(service.saliency, body.model, body.text, ids=body.ids,
                                               method=body.method, steps=body.steps))

    @v1.post("/neighbours", response_model=schema.Neighbours)
    async def neighbours(body: NeighboursRequest) -> Any:
        """The k nearest training pieces with their pairs, highlighted words, similarity and a 2-D map."""
        return await api.run(functools.partial(service.neighbours, body.model, body.text, ids=body.ids,
                                               side=body.side, position=body.position, k=body.k))

    @v1.post("/score", response_model=schema.Scored)
    async def score(body: ScoreRequest) -> Any:  # type: ignore[valid-type]
        return await api.run(service.score, body.model, body.text, body.target, _settings(body))

    return v1


def _add_operations(app: FastAPI, service: Service, metrics: Metrics) -> None:
    """``/healthz`` (no login) and ``/metrics`` (Prometheus text), answered on the event loop
    (they never wait for a model)."""
    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, Any]:
        """Alive, and the models there are."""
        return {"status": "ok", "models": service.catalog.names()}

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}})
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _add_docs(app: FastAPI) -> None:
    """``/v1/docs``: Swagger UI from the swagger-ui-bundle package, so it works offline."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/v1/docs-assets", StaticFiles(directory=swagger_ui_path), name="swagger-assets")

    @app.get("/v1/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/v1/openapi.json", title="s2s explorer API",
                                   swagger_js_url="/v1/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/v1/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/v1/docs-assets/favicon-32x32.png")

def create_app_from_environment() -> FastAPI:
    """For ``uvicorn --factory`` and ``python -m s2s serve``: the models in ``$S2S_CHECKPOINTS``,
    the logins in ``$S2S_AUTH`` (``user:password``) or the file ``$S2S_AUTH_FILE``, and the API
    keys in ``$S2S_API_KEYS`` (comma-separated) or the file ``$S2S_API_KEYS_FILE``."""
    from .admission import limit_malloc_arenas
    from .logins import read_api_keys, read_logins

    limit_malloc_arenas()  # before the server's threads start
    return create_app(Service.from_environment(),
                      read_logins(os.environ.get("S2S_AUTH_FILE"), os.environ.get("S2S_AUTH")),
                      api_keys=read_api_keys(os.environ.get("S2S_API_KEYS_FILE"), os.environ.get("S2S_API_KEYS")))
