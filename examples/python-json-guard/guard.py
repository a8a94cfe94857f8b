"""The JSON guard's policy: parsing the route's config and checking a request body.

Plain Python with no Sluice imports, so `python3 -m unittest` runs it without a toolchain.
"""

import json
from dataclasses import dataclass

TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}
KNOWN_KEYS = {"methods", "fields", "allow_extra_fields", "max_body_bytes"}
MAX_BODY_LIMIT = 16 << 20


class ConfigError(Exception):
    """A route config the guard refuses; the message is one line for the operator."""


@dataclass(frozen=True)
class Field:
    """One expected top-level field of the body."""

    name: str
    kind: str
    required: bool


@dataclass(frozen=True)
class Guard:
    """What one route entry checks."""

    methods: frozenset
    fields: tuple
    allow_extra_fields: bool
    max_body_bytes: int

    def applies_to(self, method: str) -> bool:
        """Whether requests with this method have their body checked."""
        return method.upper() in self.methods


@dataclass(frozen=True)
class Rejection:
    """Why a request is refused: HTTP status, error code, message, and the fields at fault."""

    status: int
    code: str
    message: str
    fields: tuple = ()

    def body(self) -> bytes:
        """The JSON error body sent to the client."""
        doc = {"error": self.code, "message": self.message}
        if self.fields:
            doc["fields"] = list(self.fields)
        return json.dumps(doc).encode()


def parse_config(text: str) -> Guard:
    """Parses the route's config (JSON) into a Guard, or raises ConfigError."""
    try:
        raw = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as e:
        raise ConfigError(f"config is not JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError("config must be a table")
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"unknown config key `{unknown[0]}` (known: {', '.join(sorted(KNOWN_KEYS))})")
    methods = raw.get("methods", ["POST", "PUT", "PATCH"])
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods) or not methods:
        raise ConfigError("`methods` must be a non-empty list of strings")
    spec = raw.get("fields")
    if not isinstance(spec, dict) or not spec:
        raise ConfigError('`fields` is required: a table of field name to type, e.g. { id = "string", note = "string?" }')
    fields = []
    for name, kind in spec.items():
        if not isinstance(kind, str):
            raise ConfigError(f"field `{name}`: the type must be a string")
        required = not kind.endswith("?")
        base = kind.rstrip("?")
        if base not in TYPES:
            raise ConfigError(f"field `{name}`: unknown type `{kind}` (known: {', '.join(TYPES)}, with `?` for optional)")
        fields.append(Field(name, base, required))
    extra = raw.get("allow_extra_fields", True)
    if not isinstance(extra, bool):
        raise ConfigError("`allow_extra_fields` must be true or false")
    limit = raw.get("max_body_bytes", 65536)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_BODY_LIMIT:
        raise ConfigError(f"`max_body_bytes` must be a whole number from 1 to {MAX_BODY_LIMIT}")
    return Guard(frozenset(m.upper() for m in methods), tuple(fields), extra, limit)


def check_content_type(content_type):
    """Refuses a body that does not say it is JSON (415); None when it does."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return None
    shown = media or "none"
    return Rejection(415, "json_required", f"this endpoint takes application/json (the request said {shown})")


def check_body(guard: Guard, body: bytes):
    """Checks a JSON body against the guard: None when it passes, else the Rejection."""
    try:
        doc = json.loads(body)
    except UnicodeDecodeError:
        return Rejection(400, "invalid_json", "the body is not UTF-8")
    except json.JSONDecodeError as e:
        return Rejection(400, "invalid_json", f"the body is not JSON: {e}")
    if not isinstance(doc, dict):
        return Rejection(400, "invalid_body", f"the body must be a JSON object, not {json_type(doc)}")
    problems = []
    for field in guard.fields:
        if field.name not in doc:
            if field.required:
                problems.append((field.name, f"`{field.name}` is required ({field.kind})"))
            continue
        value = doc[field.name]
        if not matches(field.kind, value):
            problems.append((field.name, f"`{field.name}` must be {field.kind}, not {json_type(value)}"))
    if not guard.allow_extra_fields:
        known = {f.name for f in guard.fields}
        for name in doc:
            if name not in known:
                problems.append((name, f"`{name}` is not an accepted field"))
    if not problems:
        return None
    return Rejection(400, "invalid_body", "; ".join(p[1] for p in problems), tuple(p[0] for p in problems))


def matches(kind: str, value) -> bool:
    """Whether a decoded JSON value has the type named `kind` (booleans are not numbers)."""
    if isinstance(value, bool) and kind != "boolean":
        return False
    return isinstance(value, TYPES[kind])


def json_type(value) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
