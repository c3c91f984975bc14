"""The OpenAPI schema says what the routes really answer, and ``OPTIONS``/405 name every method of a path.

FastAPI documents only a route's success and 422. Every route here can also answer the service's own errors
(bad input, auth, limits, an engine or upstream failing, the request's deadline), all in one JSON shape
(``schemas.error_body``); they are added to every operation so a client generated from the schema (or a
schemathesis run) knows them. Starlette answers ``OPTIONS`` and wrong methods from the first route whose path
matches, so ``Allow`` named only GET on a path that also takes DELETE; ``allowed_methods`` looks at them all.
"""

from __future__ import annotations

#: Statuses any operation may answer besides its own success (see docs/server.md "Errors").
ERRORS = {
    400: "invalid input (a missing or bad field, text no engine can speak)",
    401: "no or a wrong API key",
    403: "refused: another user's resource, a disallowed origin or host",
    404: "no such voice, model or resource",
    408: "the request body arrived too slowly (server.body_timeout_s)",
    409: "a conflict with an existing resource",
    413: "too large: body, upload, text, or audio longer than the limit",
    415: "an unsupported media type",
    422: "a value of the wrong type",
    429: "a quota or rate limit was reached",
    500: "an unexpected server error (see the server log)",
    501: "a capability whose optional packages this server does not have (e.g. RVC without the 'rvc' extra)",
    502: "an upstream server (remote engine, GPT-SoVITS) answered badly",
    503: "no engine could serve the request (not installed, failing, circuit open), or the server is busy",
    504: "no whole answer within server.request_timeout_s (queue, synthesis and streaming)",
}

#: Routes whose success is audio (any response format), or JSON/SSE events with ``timestamps``/``stream_format``.
AUDIO_ROUTES = {("post", "/v1/audio/speech"), ("post", "/api/tts"), ("post", "/api/convert")}


def _audio_content() -> dict:
    from demod_voice.audio import MEDIA_TYPES

    binary = {"schema": {"type": "string", "format": "binary"}}
    # Server-Sent Events are described one event at a time (OpenAPI 3.2's reading, which schemathesis checks):
    # each ``data`` line is a JSON object (speech.audio.delta/done, or the audio and word events).
    event = {"schema": {"type": "object", "required": ["data"], "properties": {
        "event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}}}}
    kinds = dict.fromkeys([*MEDIA_TYPES.values()])
    return {**{kind: binary for kind in kinds}, "text/event-stream": event,
            "application/json": {"schema": {"type": "object"}}}


_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["message", "type"], "properties": {
        "message": {"type": "string"}, "type": {"type": "string"},
        "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]},
        "hint": {"type": ["string", "null"]}}}},
}


def install(app) -> None:
    """Wrap ``app.openapi`` so every operation documents ``ERRORS`` (built once, then cached by FastAPI)."""
    plain = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = plain()
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = _ERROR_SCHEMA
        error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                if (method, path) in AUDIO_ROUTES:
                    responses.setdefault("200", {"description": "audio"})["content"] = _audio_content()
                for status, text in ERRORS.items():
                    responses.setdefault(str(status), {"description": text, **error})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


def allowed_methods(app, path: str) -> list[str]:
    """Every method the schema's operations take on ``path``, plus OPTIONS; empty for a path the schema does
    not describe (FastAPI routes take no HEAD, so none is named)."""
    table = getattr(app.state, "method_table", None)
    if table is None:
        import re

        table = []
        for template, operations in app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\{[^}/]+\\}", "[^/]+", re.escape(template))
            table.append((re.compile(f"^{pattern}$"), {m.upper() for m in operations}))
        app.state.method_table = table
    methods: set[str] = set()
    for regex, names in table:
        if regex.match(path):
            methods |= names
    if methods:
        methods.add("OPTIONS")
    return sorted(methods)
