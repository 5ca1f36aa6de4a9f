"""A plain REST API for programs (FastAPI): stateless, batched, documented by OpenAPI, and
speaking LibreTranslate's core routes so that existing translation clients work unchanged.

- ``POST /v1/translate`` (one text or a list of texts, the model, every ``DecodeSettings`` field
  by name with its default), ``GET /v1/models``, and the what-if questions ``POST
  /v1/alternatives``, ``/v1/redecode``, ``/v1/override``, ``/v1/saliency``, ``/v1/score``,
  ``/v1/neighbours``: the same
  JSON as the Python API; schema at ``/v1/openapi.json``, interactive docs at ``/v1/docs``.
- LibreTranslate: ``POST /translate`` (``q`` a string or a list, ``source``, ``target``,
  ``format``, ``alternatives``; JSON or form-encoded, as its clients send), ``GET /languages``,
  and ``POST /detect`` answered 400 (the models cannot tell languages apart honestly).
- ``GET /healthz``, ``GET /metrics`` (Prometheus).

Every request goes through ``s2s.service`` (the batcher decodes concurrent calls together; the
gate admits). Errors: a bad request 422 naming the field (LibreTranslate routes: 400 with
``{"error"}``), an unknown model 404 naming the models there are, a body over 1 MB 413, a busy
server 503 with ``Retry-After``, without the login (when logins are set) 401; anything else is
logged with its traceback and answered 500 with an id. ``create_app`` builds the app (``app.py``
mounts the page under it); ``python -m s2s serve`` runs it alone, any number of workers or
replicas, as nothing is kept between requests.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import secrets
import time
import uuid
from typing import Any, Literal, Optional, Union
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST, ProcessCollector
from pydantic import BaseModel, ConfigDict, Field, create_model

from . import schema
from .admission import Busy
from .neighbours import DEFAULT_NEIGHBOURS, MAX_NEIGHBOURS
from .saliency import DEFAULT_STEPS
from .service import DEFAULT_MODEL, RequestError, Service, SettingError, UnknownModel, settings_from

LOG = logging.getLogger(__name__)
MAX_BODY_BYTES = 2**20
LANGUAGE_NAMES = {"en": "English", "fr": "French", "es": "Spanish", "de": "German"}
SETTINGS = schema.settings_fields()


def _request_model(name: str, doc: str, fields: dict[str, Any], example: dict[str, Any]) -> type[BaseModel]:
    """A request body: ``fields`` and then every decoding setting with its default. Strict: a value
    of another JSON type than the schema says (``false`` for an integer, ``"5"`` for a number) is
    refused with 422, not converted (found by fuzzing the schema, tests/test_rest_fuzz.py)."""
    return create_model(name, __doc__=doc, __config__=ConfigDict(extra="forbid", strict=True,
                                                                json_schema_extra={"examples": [example]}),
                        **fields, **SETTINGS)


TranslateRequest = _request_model(
    "TranslateRequest", "Translate one text (answered with one result) or a list (a list of results, in order).",
    {"model": (str, DEFAULT_MODEL), "text": (Union[str, list[str]], ...)},
    {"model": "en-fr", "text": "Where is the station?", "beam_size": 5})
AlternativesRequest = _request_model(
    "AlternativesRequest", "The best output of the text's first sentence with the model's top pieces at each position.",
    {"model": (str, DEFAULT_MODEL), "text": (str, ...)}, {"model": "en-fr", "text": "The cat sleeps."})
RedecodeRequest = _request_model(
    "RedecodeRequest", "Put a piece id or a typed word (empty: the runner-up piece) at an output position of `ids` "
    "(null: the best output) and decode the rest.",
    {"model": (str, DEFAULT_MODEL), "text": (str, ...), "position": (int, 1),
     "replacement": (Union[int, str], ""), "ids": (Optional[list[int]], None)},
    {"model": "en-fr", "text": "The cat sleeps.", "position": 1, "replacement": "chien"})
OverrideRequest = _request_model(
    "OverrideRequest", "At output `step`, the decoder looks where `weights` say (one per source piece, </s> "
    "included), or evenly over the source pieces `steer`, or evenly over all; the rest is decoded again.",
    {"model": (str, DEFAULT_MODEL), "text": (str, ...), "step": (int, 0), "weights": (Optional[list[float]], None),
     "steer": (Optional[list[int]], None), "ids": (Optional[list[int]], None)},
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
    ids: Optional[list[int]] = None
    method: str = "integrated_gradients"
    steps: int = Field(DEFAULT_STEPS, description="integrated gradients' steps")


class NeighboursRequest(BaseModel):
    """The training pieces nearest piece `position` of the source or of `ids` (null: the best
    output), by the model's hidden states (needs the model's neighbour index)."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"model": "en-fr", "text": "The cat sleeps.", "side": "output", "position": 1, "k": 10}]})
    model: str = DEFAULT_MODEL
    text: str
    ids: Optional[list[int]] = None
    side: Literal["source", "output"] = "output"
    position: int = Field(0, description="piece index on that side (not </s>)")
    k: int = Field(DEFAULT_NEIGHBOURS, ge=1, le=MAX_NEIGHBOURS, description="how many neighbours")


def _settings(body: BaseModel) -> Any:
    return settings_from({name: getattr(body, name) for name in SETTINGS})


def _error(status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    detail: Any = message if field is None else [{"loc": ["body", field], "msg": message, "type": "value_error"}]
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class Metrics:
    """Requests by route and status, latency by route, resident memory; one registry per app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter("s2s_requests", "requests answered", ["route", "status"], registry=self.registry)
        self.latency = Histogram("s2s_request_seconds", "time to answer", ["route"], registry=self.registry,
                                 buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.texts = Histogram("s2s_texts_per_request", "texts in a translate request", registry=self.registry,
                               buckets=(1, 2, 4, 8, 16, 32, 64))


def create_app(service: Service, logins: list[tuple[str, str]] | None = None, middleware: list | None = None) -> FastAPI:
    """The REST API over ``service``; with ``logins`` every route asks for one (HTTP Basic)."""
    app = FastAPI(title="s2s explorer API", version="1", docs_url="/v1/docs", openapi_url="/v1/openapi.json",
                  redoc_url=None, middleware=middleware or [],
                  description="Translate and ask the models why, over plain HTTP. See the README's REST API section.")
    metrics = Metrics()
    _add_guard(app, metrics, logins)
    _add_error_handlers(app)
    app.include_router(_v1_routes(service, metrics))
    _add_operations(app, service, metrics)
    _add_libretranslate(app, service)
    return app


def _add_guard(app: FastAPI, metrics: "Metrics", logins: list[tuple[str, str]] | None) -> None:
    """The API's routes: refuse a body over MAX_BODY_BYTES and a caller without a login (when
    there are logins); count every request and its latency."""
    protected = ("/v1/", "/translate", "/languages", "/detect", "/metrics")

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if not path.startswith(protected) and path != "/healthz":
            return await call_next(request)  # the page mounted under this app has its own rules
        started = time.perf_counter()
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            response: Response = _error(413, f"the request body is over {MAX_BODY_BYTES // 2**20} MB")
        elif logins and path != "/healthz" and not _logged_in(request, logins):
            response = _error(401, "log in (HTTP Basic) with one of the server's logins",
                              headers={"WWW-Authenticate": 'Basic realm="s2s"'})
        else:
            response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "other")
        metrics.requests.labels(name, str(response.status_code)).inc()
        metrics.latency.labels(name).observe(time.perf_counter() - started)
        return response


def _add_error_handlers(app: FastAPI) -> None:
    """RequestError -> 422 (404 for an unknown model; 400 with ``{"error"}`` on LibreTranslate's
    routes), Busy -> 503 with Retry-After, anything else -> logged and 500 with an id."""
    @app.exception_handler(RequestError)
    async def bad_request(request: Request, error: RequestError) -> JSONResponse:
        if request.url.path in ("/translate", "/detect"):
            return JSONResponse({"error": str(error)}, status_code=400)
        if isinstance(error, UnknownModel):
            return _error(404, str(error))
        return _error(422, str(error), error.field if isinstance(error, SettingError) else None)

    @app.exception_handler(Busy)
    async def busy(request: Request, error: Busy) -> JSONResponse:
        return JSONResponse({"detail": str(error), "error": str(error)}, status_code=503,
                            headers={"Retry-After": str(error.retry_after)})

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:8]
        LOG.exception("%s %s failed (error %s)", request.method, request.url.path, incident, exc_info=error)
        return JSONResponse({"detail": "internal error; it is in the server's log", "id": incident}, status_code=500)


def _v1_routes(service: Service, metrics: "Metrics") -> APIRouter:
    """``/v1/``: translate, models and the what-if questions, thin over ``service``."""
    v1 = APIRouter(prefix="/v1", tags=["s2s"])

    @v1.post("/translate", response_model=Union[schema.Result, list[schema.Result]])
    def translate(body: TranslateRequest) -> Any:  # type: ignore[valid-type]
        """Every sentence with its hypotheses, scores, attention and beam trace (`s2s.Translator.translate`)."""
        texts = [body.text] if isinstance(body.text, str) else body.text
        if not texts:
            raise RequestError("text must be a text or a non-empty list of texts")
        metrics.texts.observe(len(texts))
        results = service.translate(body.model, texts, _settings(body))
        return results[0] if isinstance(body.text, str) else results

    @v1.get("/models")
    def models() -> list[dict[str, Any]]:
        """Every model: name, language pair, card summary, architecture."""
        return service.models()

    @v1.post("/alternatives", response_model=schema.Alternatives)
    def alternatives(body: AlternativesRequest) -> Any:  # type: ignore[valid-type]
        return service.alternatives(body.model, body.text, _settings(body))

    @v1.post("/redecode", response_model=schema.Sentence)
    def redecode(body: RedecodeRequest) -> Any:  # type: ignore[valid-type]
        return service.redecode(body.model, body.text, _settings(body), ids=body.ids, position=body.position,
                                replacement=body.replacement)

    @v1.post("/override", response_model=schema.Sentence)
    def override(body: OverrideRequest) -> Any:  # type: ignore[valid-type]
        return service.override(body.model, body.text, _settings(body), ids=body.ids, step=body.step,
                                weights=body.weights, steer=body.steer)

    @v1.post("/saliency", response_model=schema.Saliency)
    def saliency(body: SaliencyRequest) -> Any:
        return service.saliency(body.model, body.text, ids=body.ids, method=body.method, steps=body.steps)

    @v1.post("/neighbours", response_model=schema.Neighbours)
    def neighbours(body: NeighboursRequest) -> Any:
        """The k nearest training pieces with their pairs, highlighted words, similarity and a 2-D map."""
        return service.neighbours(body.model, body.text, ids=body.ids, side=body.side, position=body.position,
                                  k=body.k)

    @v1.post("/score", response_model=schema.Scored)
    def score(body: ScoreRequest) -> Any:  # type: ignore[valid-type]
        return service.score(body.model, body.text, body.target, _settings(body))

    return v1


def _add_operations(app: FastAPI, service: Service, metrics: "Metrics") -> None:
    """``/healthz`` (no login) and ``/metrics`` (Prometheus text)."""
    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, Any]:
        """Alive, and the models there are."""
        return {"status": "ok", "models": service.catalog.names()}

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}})
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _add_libretranslate(app: FastAPI, service: Service) -> None:
    """LibreTranslate's core routes, the model chosen from the language pair."""
    @app.post("/translate", tags=["LibreTranslate"])
    async def libre_translate(request: Request) -> Any:
        """LibreTranslate's `/translate`: `q` (a text or a list), `source`, `target`, `format`
        ("text"), `alternatives`; JSON or form-encoded. The model is chosen from the pair."""
        values = await _body(request)
        q, source, target = values.get("q"), values.get("source", "auto"), values.get("target")
        if not q or not (isinstance(q, str) or (isinstance(q, list) and all(isinstance(t, str) for t in q))):
            raise RequestError("Invalid request: missing q parameter")
        if not isinstance(target, str) or not target:
            raise RequestError("Invalid request: missing target parameter")
        if values.get("format", "text") != "text":
            raise RequestError("Only format \"text\" is supported: markup would be translated as words")
        try:
            count = int(values.get("alternatives", 0) or 0)
        except (TypeError, ValueError):
            raise RequestError("alternatives must be a number") from None
        if not 0 <= count <= 10:
            raise RequestError("alternatives must be in [0, 10]")
        model, detected = _model_for(service, source, target)
        settings = settings_from({"nbest": count + 1, "beam_size": max(5, count + 1)})
        texts = [q] if isinstance(q, str) else q
        results = service.translate(model, texts, settings)
        for result in results:
            if result["message"] and result["source"].strip():
                raise RequestError(result["message"])
        translated = [result["text"] for result in results]
        answer: dict[str, Any] = {"translatedText": translated[0] if isinstance(q, str) else translated}
        if count:
            others = [_alternatives(result, count) for result in results]
            answer["alternatives"] = others[0] if isinstance(q, str) else others
        if detected:
            language = {"language": detected, "confidence": 0.0}
            answer["detectedLanguage"] = language if isinstance(q, str) else [language] * len(texts)
        return answer

    @app.get("/languages", tags=["LibreTranslate"])
    def languages() -> list[dict[str, Any]]:
        """Every language of the models, with the languages it translates into."""
        pairs = _pairs(service)
        codes = sorted({code for pair in pairs for code in pair})
        return [{"code": code, "name": LANGUAGE_NAMES.get(code, code),
                 "targets": sorted({target for source, target in pairs if source == code})} for code in codes]

    @app.post("/detect", tags=["LibreTranslate"])
    def detect() -> Any:
        raise RequestError("Language detection is not supported: each model reads one source language and "
                           "cannot tell languages apart. Name the source language.")


def _logged_in(request: Request, logins: list[tuple[str, str]]) -> bool:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return any(secrets.compare_digest(user, u) and secrets.compare_digest(password, p) for u, p in logins)


async def _body(request: Request) -> dict[str, Any]:
    """A LibreTranslate request's values: JSON, or form-encoded as its Python client sends them."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise RequestError(f"the request body is over {MAX_BODY_BYTES // 2**20} MB")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            values = json.loads(raw or b"{}")
        except ValueError:
            raise RequestError("Invalid request: the body is not JSON") from None
        if not isinstance(values, dict):
            raise RequestError("Invalid request: the body must be a JSON object")
        return values
    form = parse_qs(raw.decode("utf-8", errors="replace"))
    return {key: value if key == "q" and len(value) > 1 else value[0] for key, value in form.items()}


def _pairs(service: Service) -> list[tuple[str, str]]:
    """(source, target) of every model named ``source-target[-variant]``."""
    pairs = []
    for name in service.catalog.names():
        parts = name.split("-")
        if len(parts) >= 2 and all(len(p) == 2 and p.isalpha() for p in parts[:2]):
            pairs.append((parts[0], parts[1]))
    return sorted(set(pairs))


def _model_for(service: Service, source: str, target: str) -> tuple[str, str | None]:
    """The model for a language pair (the plain ``source-target`` folder first), and the source
    language taken for "auto" (the only one a model translates into ``target`` from)."""
    detected = None
    if source == "auto":
        sources = sorted({s for s, t in _pairs(service) if t == target})
        if len(sources) != 1:
            raise RequestError(f"source \"auto\" needs one model into {target!r}; name the source language "
                               f"(languages: {', '.join(s + '-' + t for s, t in _pairs(service))})")
        source = detected = sources[0]
    names = service.catalog.names()
    for name in [f"{source}-{target}"] + [n for n in names if n.startswith(f"{source}-{target}-")]:
        if name in names:
            return name, detected
    raise RequestError(f"{source!r} to {target!r} is not supported; pairs: "
                       f"{', '.join(s + '-' + t for s, t in _pairs(service)) or 'none'}")


def _alternatives(result: dict[str, Any], count: int) -> list[str]:
    """The texts of the next-best hypotheses, sentence by sentence joined."""
    sentences = [s["hypotheses"] for s in result["sentences"]]
    return [" ".join(h[min(i, len(h) - 1)]["text"] for h in sentences) for i in range(1, count + 1)
            if any(len(h) > i for h in sentences)]


def create_app_from_environment() -> FastAPI:
    """For ``uvicorn --factory`` and ``python -m s2s serve``: the models in ``$S2S_CHECKPOINTS``
    and the logins in ``$S2S_AUTH`` (``user:password``) or the file ``$S2S_AUTH_FILE``."""
    from .logins import read_logins

    file = os.environ.get("S2S_AUTH_FILE")
    return create_app(Service.from_environment(), read_logins(file, os.environ.get("S2S_AUTH")))
