"""What `/api/ask` accepts: the fields, read from a JSON body or a query string, validated.

`ASK_FIELDS` is the one list of accepted fields. The validation, the unknown-field check and
the OpenAPI request schema all come from it, so a new field (a retrieval `mode`, say) is one
entry here plus the keyword argument it becomes in `Retriever.ask`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from qa.config import MODES, RetrievalConfig
from qa.filters import SORTS, parse_filters, parse_sort
from qa.retriever import Retriever
from qa.web.errors import ApiError

JSON_MIMETYPE = "application/json"
_QUERY_INTEGER = re.compile(r"[+-]?\d{1,9}(\.0*)?")
# JSON Schema's "\s" misses the control characters 0x1c-0x1f and 0x85, which strip() removes.
QUESTION_PATTERN = "[^\\s\\u001c-\\u001f\\u0085]"


@dataclass(frozen=True)
class AskField:
    """One field of an ask request."""

    name: str
    """The JSON body key, and the keyword argument of `Retriever.ask`."""
    query_name: str
    """Its name in `GET /api/ask?…`."""
    description: str
    schema: Callable[[RetrievalConfig], dict[str, Any]]
    """Its JSON schema, for the OpenAPI document."""
    validate: Callable[[Retriever, Any], Any]
    """Checks a value and returns it cleaned; raises InvalidQuestionError."""
    from_query: Callable[[str], Any] = str
    """Query-string text -> the value a JSON body would carry."""
    required: bool = False
    in_query: bool = True
    """False for a field only a JSON body carries (filters come as separate parameters)."""


def _integer_from_query(text: str) -> Any:
    # Not an integer: hand the text on, and validation names the field.
    return int(float(text)) if _QUERY_INTEGER.fullmatch(text.strip()) else text


def _whole_number(value: Any) -> Any:
    """36.0 is the integer 36 to JSON Schema, so it is to the API too."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


ASK_FIELDS: tuple[AskField, ...] = (
    AskField(
        name="question",
        query_name="q",
        description="The question, in Chinese or English.",
        # The pattern: at least one character that is not whitespace to Python's strip().
        schema=lambda r: {"type": "string", "minLength": 1, "maxLength": r.max_question_chars,
                          "pattern": QUESTION_PATTERN},
        validate=lambda retriever, value: retriever.validate_question(value),
        required=True,
    ),
    AskField(
        name="top_k",
        query_name="k",
        description="How many passages to return.",
        schema=lambda r: {
            "type": "integer", "minimum": 1, "maximum": r.max_top_k, "default": r.top_k,
        },
        validate=lambda retriever, value: retriever.validate_top_k(_whole_number(value)),
        from_query=_integer_from_query,
    ),
    AskField(
        name="mode",
        query_name="mode",
        description="hybrid (vector and keyword evidence combined), vector or keyword.",
        schema=lambda r: {"enum": list(MODES), "default": r.mode},
        validate=lambda retriever, value: retriever.validate_mode(value),
    ),
    AskField(
        name="filters",
        query_name="filters",
        description="Answer only from these documents: any of source, doc_id, category "
                    "(lists), date_from, date_to (YYYY-MM-DD, inclusive; undated documents "
                    "fail a date bound). In the query string: source, doc, category "
                    "(repeatable), since, until.",
        schema=lambda r: {
            "type": "object", "additionalProperties": False,
            "properties": {
                "source": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "doc_id": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "category": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "date_from": {"type": "string", "format": "date"},
                "date_to": {"type": "string", "format": "date"},
            },
        },
        validate=lambda retriever, value: parse_filters(value),
        in_query=False,
    ),
    AskField(
        name="sort",
        query_name="sort",
        description="relevance (best first) or date (the best top_k, newest first).",
        schema=lambda r: {"enum": list(SORTS), "default": "relevance"},
        validate=lambda retriever, value: parse_sort(value),
    ),
)

# GET /api/ask parameters that make up `filters` (list ones may repeat).
FILTER_PARAMETERS = {"source": "source", "doc": "doc_id", "category": "category",
                     "since": "date_from", "until": "date_to"}
_REPEATABLE = {"source", "doc", "category"}


def ask_arguments(values: Mapping[str, Any], retriever: Retriever, names: Mapping[str, str]
                  ) -> dict[str, Any]:
    """Validated keyword arguments for `Retriever.ask` from the fields a client sent.

    `names` maps each accepted field name as sent (JSON key or query name) to its field.
    """
    unknown = sorted(set(values) - set(names))
    if unknown:
        accepted = ", ".join(names)
        raise ApiError(400, "unknown_field", f"unknown field {unknown[0]!r} (accepted: {accepted})")
    sent = {names[key]: value for key, value in values.items()}
    shown = {name: key for key, name in names.items()}
    arguments: dict[str, Any] = {}
    for field in ASK_FIELDS:
        if field.name in sent:
            arguments[field.name] = field.validate(retriever, sent[field.name])
        elif field.required:
            raise ApiError(400, "missing_field", f"the field {shown[field.name]!r} is required")
    return arguments


def arguments_from_body(request: Request, retriever: Retriever, max_bytes: int
                        ) -> dict[str, Any]:
    """Validated `Retriever.ask` arguments from a JSON request body."""
    payload = read_json_object(request, max_bytes)
    return ask_arguments(payload, retriever, {field.name: field.name for field in ASK_FIELDS})


def arguments_from_query(request: Request, retriever: Retriever) -> dict[str, Any]:
    """Validated `Retriever.ask` arguments from `?q=…&k=…&source=…&since=…`."""
    by_query_name = {field.query_name: field for field in ASK_FIELDS if field.in_query}
    values: dict[str, Any] = {}
    filters: dict[str, Any] = {}
    for key in request.args:
        texts = request.args.getlist(key)
        if len(texts) > 1 and key not in _REPEATABLE:
            raise ApiError(400, "invalid_parameter", f"the parameter {key!r} is given twice")
        if key in FILTER_PARAMETERS:
            filters[FILTER_PARAMETERS[key]] = texts if key in _REPEATABLE else texts[0]
            continue
        field = by_query_name.get(key)
        values[key] = field.from_query(texts[0]) if field else texts[0]
    names = {field.query_name: field.name for field in ASK_FIELDS if field.in_query}
    if filters:
        values["filters"] = filters
        names["filters"] = "filters"
    return ask_arguments(values, retriever, names)


def read_json_object(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object: checks size, content type, encoding and syntax."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes)
    if request.mimetype != JSON_MIMETYPE and not request.mimetype.endswith("+json"):
        shown = request.mimetype or "none"
        raise ApiError(415, "unsupported_media_type",
                       f"send the body as {JSON_MIMETYPE} (got {shown})")
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise ApiError(415, "unsupported_media_type",
                       f"send the body as UTF-8 (got charset {charset})")
    # Read one byte past the limit: a chunked body has no Content-Length to check first
    # (and the stream stops at the app's limit, so the byte past it is asked for apart).
    body = request.stream.read(max_bytes + 1)
    if len(body) >= max_bytes and request.content_length is None:
        try:
            body += request.stream.read(1)
        except RequestEntityTooLarge:
            raise _too_large(max_bytes) from None
    if len(body) > max_bytes:
        raise _too_large(max_bytes)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_encoding",
                       f"the body is not UTF-8 (bad byte at position {exc.start})") from None
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {_brief(exc)}"
                       ) from None
    if not isinstance(payload, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    return payload


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the body is larger than {max_bytes} bytes")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _brief(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at position {exc.pos}"
    return str(exc)
