"""LibreTranslate's routes, as the clients that exist call them, over ``s2s.service``.

- ``POST /translate``: ``q`` (a text or a list), ``source`` (a code, or ``"auto"``: each text's
  language is detected and its model chosen), ``target``, ``format`` (``"text"``, or ``"html"``:
  the text between tags is translated, tags and attributes kept), ``alternatives``, ``api_key``;
  as JSON, form-encoded (libretranslatepy) or multipart. Every answer carries
  ``detectedLanguage`` when the source was ``"auto"``, as LibreTranslate's does.
- ``POST /detect``: ``q`` -> ``[{"language", "confidence"}]``, best first, by a language
  identifier that ships its model in its wheel (py3langid), restricted to the models' languages.
- ``GET /languages``, ``GET /frontend/settings``.

Errors are ``{"error": "..."}`` with LibreTranslate's status codes: 400 a bad request, 403 a
missing or wrong API key, 413 a body over the limit, 429 ``"Slowdown: ..."`` when the server is
busy, 500 with an incident id. Mastodon, Discourse, Nextcloud, the "Translate Web Pages"
extension, libretranslatepy and libretranslate-ts are each tested with the request they send.
"""

from __future__ import annotations

import functools
import html
import json
from html.parser import HTMLParser
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from .logins import is_api_key
from .service import MAX_TEXTS, RequestError, Service, check_text_count, settings_from
from .translator import MAX_INPUT_CHARS, looks_like_text

LIBRE_PATHS = ("/translate", "/detect", "/languages", "/frontend/settings")
LANGUAGE_NAMES = {"en": "English", "fr": "French", "es": "Spanish", "de": "German"}
MAX_FORM_FIELDS = 256
MAX_ALTERNATIVES = 10
UNTRANSLATED_TAGS = frozenset({"script", "style", "code", "pre", "textarea"})


class LibreError(Exception):
    """An answer ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


@functools.lru_cache(maxsize=8)
def _identifier(languages: tuple[str, ...]) -> Any:
    """py3langid's identifier limited to ``languages``, with probabilities (loaded once)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(languages))
    return identifier


def detect_languages(text: str, languages: list[str]) -> list[tuple[str, float]]:
    """``(code, confidence in [0, 100])`` of ``text`` for each of ``languages``, most likely first."""
    if len(languages) == 1:
        return [(languages[0], 100.0)]
    ranked = _identifier(tuple(sorted(languages))).rank(text)
    return [(code, round(100.0 * float(probability), 2)) for code, probability in ranked]


def model_pairs(service: Service) -> list[tuple[str, str]]:
    """(source, target) of every model named ``source-target[-variant]``."""
    pairs = []
    for name in service.catalog.names():
        parts = name.split("-")
        if len(parts) >= 2 and all(len(p) == 2 and p.isalpha() for p in parts[:2]):
            pairs.append((parts[0], parts[1]))
    return sorted(set(pairs))


def model_for(service: Service, source: str, target: str) -> str:
    """The model for a language pair (the plain ``source-target`` folder first)."""
    names = service.catalog.names()
    for name in [f"{source}-{target}"] + [n for n in names if n.startswith(f"{source}-{target}-")]:
        if name in names:
            return name
    raise LibreError(400, f"{source!r} to {target!r} is not supported; pairs: "
                          f"{', '.join(s + '-' + t for s, t in model_pairs(service)) or 'none'}")


class _Markup(HTMLParser):
    """An HTML fragment as a list of parts: markup kept verbatim (tags with their attributes,
    comments, declarations) and text nodes (unescaped) to translate, with their indices."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.texts: list[int] = []  # indices into parts of the text nodes to translate
        self.skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.parts.append(self.get_starttag_text() or "")
        if tag in UNTRANSLATED_TAGS:
            self.skipping.append(tag)

    def handle_startendtag(self, tag: str, attrs: Any) -> None:
        self.parts.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        self.parts.append(f"</{tag}>")
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if looks_like_text(data) and not self.skipping:
            self.texts.append(len(self.parts))
            self.parts.append(data)
        else:
            self.parts.append(html.escape(data, quote=False) if not self.skipping else data)

    def handle_comment(self, data: str) -> None:
        self.parts.append(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self.parts.append(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self.parts.append(f"<?{data}>")

    def unknown_decl(self, data: str) -> None:
        self.parts.append(f"<![{data}]>")


def html_texts(document: str) -> tuple[list[str], Callable[[list[str]], str]]:
    """The text passages of an HTML ``document`` to translate (space around them stripped), and
    a function that puts their translations back in order: tags, attributes, comments and the
    text of script, style, code, pre and textarea kept as they were, the space around each passage
    kept around its translation."""
    parser = _Markup()
    parser.feed(document)
    parser.close()
    sources = [parser.parts[index] for index in parser.texts]

    def with_translations(translations: list[str]) -> str:
        parts = list(parser.parts)
        for index, source, translated in zip(parser.texts, sources, translations):
            leading, trailing = source[: len(source) - len(source.lstrip())], source[len(source.rstrip()):]
            parts[index] = leading + html.escape(translated, quote=False) + trailing
        return "".join(parts)

    return [source.strip() for source in sources], with_translations


async def read_values(request: Request, max_bytes: int) -> dict[str, Any]:
    """A LibreTranslate request's values: JSON, form-encoded (libretranslatepy) or multipart;
    ``q`` repeated in a form is a list."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        try:
            form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=max_bytes)
        except HTTPException:  # the body's limits (s2s.api_guard.ApiGuard)
            raise
        except Exception as error:  # noqa: BLE001 - python-multipart's and Starlette's parse errors
            raise LibreError(400, f"Invalid request: the form cannot be read ({error})") from None
        values: dict[str, Any] = {key: form.get(key) for key in form.keys()}
        if len(form.getlist("q")) > 1:
            values["q"] = form.getlist("q")
        if isinstance(values.get("alternatives"), str) and values["alternatives"].strip().isdigit():
            values["alternatives"] = int(values["alternatives"])  # a form sends every value as text
        return values
    raw = await request.body()
    try:
        values = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise LibreError(400, "Invalid request: the body is not JSON (or is nested too deeply)") from None
    if not isinstance(values, dict):
        raise LibreError(400, "Invalid request: the body must be a JSON object")
    return values


def _texts(values: dict[str, Any]) -> list[str]:
    q = values.get("q")
    texts = [q] if isinstance(q, str) else q
    if not q or not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise LibreError(400, "Invalid request: missing q parameter")
    check_text_count(len(texts))  # before anything is done per text
    if any(len(t) > MAX_INPUT_CHARS for t in texts):
        raise LibreError(400, f"Invalid request: a text is over {MAX_INPUT_CHARS} characters")
    return texts


TEXTS_SCHEMA = {"anyOf": [{"type": "string", "minLength": 1},
                          {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_TEXTS}]}
# Clients send null for what they leave unset (Mastodon's api_key without a key), so those may be null.
DETECT_FIELDS: dict[str, Any] = {"q": TEXTS_SCHEMA, "api_key": {"type": ["string", "null"]}}
TRANSLATE_FIELDS: dict[str, Any] = DETECT_FIELDS | {
    "source": {"type": ["string", "null"], "default": "auto", "description": "a language code, or \"auto\""},
    "target": {"type": "string", "minLength": 1},
    "format": {"enum": ["text", "html", None], "default": "text"},
    "alternatives": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_ALTERNATIVES, "default": 0}}


def _body_schema(fields: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of a LibreTranslate route (read by hand, in any of three encodings)."""
    required = [name for name in ("q", "target") if name in fields]
    schema = {"type": "object", "properties": fields, "required": required}
    return {"requestBody": {"required": True, "content": {
        kind: {"schema": schema} for kind in ("application/json", "application/x-www-form-urlencoded")}}}


def translate_texts(service: Service, texts: list[str], source: str, target: str, count: int, markup: bool
                    ) -> tuple[list[str], list[list[str]], list[tuple[str, float]] | None]:
    """``texts`` translated into ``target`` (``count`` alternatives each, ``markup``: HTML) from
    ``source``, or from each text's detected language (``"auto"``: then also the detections); a
    text already in the target language is kept as it is. Blocking: run off the event loop."""
    detected = None
    sources = [source] * len(texts)
    if source == "auto":
        into = sorted({s for s, t in model_pairs(service) if t == target})
        if not into:
            raise LibreError(400, f"no model translates into {target!r}; pairs: "
                                  f"{', '.join(s + '-' + t for s, t in model_pairs(service)) or 'none'}")
        detected = [detect_languages(text, sorted(set(into) | {target}))[0] for text in texts]
        sources = [code for code, _ in detected]
    settings = settings_from({"nbest": count + 1, "beam_size": max(5, count + 1), "alternatives": 0})
    translated, others = list(texts), [[] for _ in texts]
    models = {language: model_for(service, language, target) for language in set(sources) if language != target}
    by_model: dict[str, list[int]] = {}
    for index, (text, language) in enumerate(zip(texts, sources)):
        if language != target and looks_like_text(text):  # a text already in the target is kept
            by_model.setdefault(models[language], []).append(index)
    for model, indices in by_model.items():
        if markup:  # every passage of every document in one request, bounded as one
            documents = [html_texts(texts[index]) for index in indices]
            passages = [passage for parts, _ in documents for passage in parts]
            results = iter(service.translate(model, passages, settings, details=False) if passages else [])
            for index, (parts, with_translations) in zip(indices, documents):
                translated[index] = with_translations([next(results)["text"] for _ in parts])
            continue
        results = service.translate(model, [texts[i] for i in indices], settings, details=False)  # text only
        for index, result in zip(indices, results):
            if result["message"]:
                raise RequestError(result["message"])
            translated[index] = result["text"]
            others[index] = _alternatives(result, count)
    return translated, others, detected


def add_libretranslate(app: FastAPI, service: Service, run: Callable[..., Any], api_keys: list[str] | None,
                       requires_key: Callable[[Request], bool], max_bytes: int,
                       errors: dict[int | str, dict[str, Any]]) -> None:
    """LibreTranslate's routes on ``app``: ``run(function, *args)`` runs blocking work off the
    event loop; ``requires_key(request)``: whether the request still needs a valid ``api_key``
    (logins or keys are set and it brought no valid login); ``errors``: the error answers the
    routes document."""

    def check_key(request: Request, values: dict[str, Any]) -> None:
        for name in ("api_key", "source", "format"):
            if values.get(name) is not None and not isinstance(values[name], str):
                raise LibreError(400, f"Invalid request: {name} must be text")
        if requires_key(request) and not is_api_key(values.get("api_key"), api_keys):
            if values.get("api_key"):  # a wrong key, not a missing one: counted by the guard's throttle
                request.scope.setdefault("state", {})["failed_login"] = True
            raise LibreError(403, "Invalid API key")

    @app.post("/translate", tags=["LibreTranslate"], responses=errors, openapi_extra=_body_schema(TRANSLATE_FIELDS))
    async def libre_translate(request: Request) -> Any:
        """LibreTranslate's `/translate`: `q` (a text or a list), `source` (or "auto"), `target`,
        `format` ("text" or "html"), `alternatives`, `api_key`; JSON, form-encoded or multipart."""
        values = await read_values(request, max_bytes)
        check_key(request, values)
        texts = _texts(values)
        source, target = values.get("source") or "auto", values.get("target")
        if not isinstance(target, str) or not target:
            raise LibreError(400, "Invalid request: missing target parameter")
        if not isinstance(source, str):
            raise LibreError(400, "Invalid request: source must be a language code or \"auto\"")
        markup = values.get("format") or "text"
        if markup not in ("text", "html"):
            raise LibreError(400, "Invalid request: format must be \"text\" or \"html\"")
        count = values.get("alternatives") or 0
        if isinstance(count, bool) or not isinstance(count, int):
            raise LibreError(400, "Invalid request: alternatives must be a whole number")
        if not 0 <= count <= MAX_ALTERNATIVES:
            raise LibreError(400, f"Invalid request: alternatives must be in [0, {MAX_ALTERNATIVES}]")
        if source != "auto":
            model_for(service, source, target)  # an unsupported pair is refused before any work
        translated, others, detected = await run(translate_texts, service, texts, source, target, count, markup == "html")
        one = isinstance(values["q"], str)
        answer: dict[str, Any] = {"translatedText": translated[0] if one else translated}
        if count:
            answer["alternatives"] = others[0] if one else others
        if detected is not None:
            languages = [{"language": code, "confidence": confidence} for code, confidence in detected]
            answer["detectedLanguage"] = languages[0] if one else languages
        return answer

    @app.post("/detect", tags=["LibreTranslate"], responses=errors, openapi_extra=_body_schema(DETECT_FIELDS))
    async def detect(request: Request) -> Any:
        """LibreTranslate's `/detect`: the languages of `q` (the first text of a list), most
        likely first, each with a confidence in [0, 100], among the models' languages."""
        values = await read_values(request, max_bytes)
        check_key(request, values)
        texts = _texts(values)
        languages = sorted({code for pair in model_pairs(service) for code in pair})
        if not languages:
            raise LibreError(400, "no models are installed")
        ranked = await run(detect_languages, texts[0], languages)
        return [{"language": code, "confidence": confidence} for code, confidence in ranked]

    @app.get("/languages", tags=["LibreTranslate"])
    async def languages() -> list[dict[str, Any]]:
        """Every language of the models, with the languages it translates into."""
        pairs = model_pairs(service)
        codes = sorted({code for pair in pairs for code in pair})
        return [{"code": code, "name": LANGUAGE_NAMES.get(code, code),
                 "targets": sorted({target for source, target in pairs if source == code})} for code in codes]

    @app.get("/frontend/settings", tags=["LibreTranslate"])
    async def frontend_settings(request: Request) -> dict[str, Any]:
        """What LibreTranslate's web clients read before they translate."""
        pairs = model_pairs(service)
        first = pairs[0] if pairs else ("en", "en")
        return {"charLimit": MAX_INPUT_CHARS, "frontendTimeout": 500, "suggestions": False,
                "filesTranslation": False, "supportedFilesFormat": [], "apiKeys": bool(api_keys),
                "keyRequired": requires_key(request),
                "language": {"source": {"code": "auto", "name": "Auto Detect"},
                             "target": {"code": first[1], "name": LANGUAGE_NAMES.get(first[1], first[1])}}}


def _alternatives(result: dict[str, Any], count: int) -> list[str]:
    """The texts of the next-best hypotheses, sentence by sentence joined."""
    sentences = [s["hypotheses"] for s in result["sentences"]]
    return [" ".join(h[min(i, len(h) - 1)]["text"] for h in sentences) for i in range(1, count + 1)
            if any(len(h) > i for h in sentences)]
