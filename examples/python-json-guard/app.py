"""The Sluice side of the JSON guard: the exports of the `sluice:plugin@0.1.5` world.

componentize-py generates the `wit_world` package from `../../wit` at build time; the world's
exports are the methods of the `WitWorld` class below, records are dataclasses with snake_case
fields, variants are classes such as `RequestVerdict_Respond(value)`, and `list<u8>` is bytes.
"""

import wit_world
from componentize_py_types import Err
from wit_world.imports import log, metrics
from wit_world.imports.types import (
    Hook,
    LocalResponse,
    PluginInfo,
    RequestVerdict_Continue,
    RequestVerdict_NeedBody,
    RequestVerdict_Respond,
    ResponseVerdict_Continue,
)

import guard

# The route's guard, set by `init` (each instance serves one route entry).
GUARD = None


class WitWorld(wit_world.WitWorld):
    """The plugin: checks JSON request bodies before they reach the upstream."""

    def describe(self) -> PluginInfo:
        """Runs once at load: name, version, and the hooks the host should call."""
        return PluginInfo("json-guard", "0.1.0", [Hook.REQUEST_HEADERS, Hook.REQUEST_BODY], guard.MAX_BODY_LIMIT)

    def init(self, config: str) -> None:
        """Runs once per instance with the route's config as JSON; Err rejects the config."""
        global GUARD
        try:
            GUARD = guard.parse_config(config)
        except guard.ConfigError as e:
            raise Err(str(e))

    def on_request_headers(self, req):
        """Asks for the body of requests it checks, after refusing a non-JSON content type."""
        if not GUARD.applies_to(req.method):
            return RequestVerdict_Continue()
        rejection = guard.check_content_type(header(req.headers, "content-type"))
        if rejection is not None:
            return refuse(req, rejection)
        return RequestVerdict_NeedBody(GUARD.max_body_bytes)

    def on_request_body(self, req, body: bytes):
        """Lets a body that passes through unchanged; refuses any other with 400."""
        rejection = guard.check_body(GUARD, body)
        if rejection is not None:
            return refuse(req, rejection)
        return RequestVerdict_Continue()

    def on_response_headers(self, req, resp):
        """Not used; the world requires the export."""
        return ResponseVerdict_Continue()

    def on_log(self, entry) -> None:
        """Not used; the world requires the export."""

    def on_message(self, channel: str, message: bytes) -> None:
        """Not used; the world requires the export."""

    def on_tick(self) -> None:
        """Not used; the world requires the export."""


def header(headers, name: str):
    """The first value of header `name` (lower-case) as text, or None."""
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def refuse(req, rejection: guard.Rejection):
    """The local response for a rejection, counted and logged."""
    try:
        metrics.counter_add("rejected_total", 1)
    except Err:
        pass  # past the series cap: the request's outcome does not change
    log.write(log.Level.INFO, f"{rejection.code}: {rejection.message} (request {req.request_id})")
    headers = [("content-type", b"application/json")]
    return RequestVerdict_Respond(LocalResponse(rejection.status, headers, rejection.body()))
