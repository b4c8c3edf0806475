"""HTTP plumbing shared by every route: body rules (docs/spec/ingest.md) and the one error → status map."""

from __future__ import annotations

import functools
import inspect
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import azure.functions as func

from shared.errors import (
    ConfigurationError,
    ConflictError,
    EvidenceChainBrokenError,
    ForbiddenError,
    IncidentNotFoundError,
    PartnerNotFoundError,
    PayloadTooLargeError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
    ValidationError,
)

MAX_BODY_BYTES = 1024 * 1024
log = logging.getLogger("soc_responder.http")


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, ensure_ascii=False, default=str),
        status_code=status,
        mimetype="application/json",
        headers=headers,
    )


def error_body(error: str, details: list[dict] | None = None) -> dict:
    return {"error": error, "details": details or []}


def read_json(req: func.HttpRequest) -> Any:
    """The request's JSON body, enforcing content type, size and syntax (docs/spec/ingest.md)."""
    length = req.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise PayloadTooLargeError()
    body = req.get_body() or b""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLargeError()
    ctype = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if not (ctype == "application/json" or (ctype.startswith("application/") and ctype.endswith("+json"))):
        raise UnsupportedMediaTypeError()
    if not body.strip():
        raise ValidationError("request body is empty", [{"field": "body", "message": "a JSON object is required"}])
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValidationError("request body is not UTF-8", [{"field": "body", "message": "invalid UTF-8"}]) from None
    except RecursionError:
        raise ValidationError(
            "request body is nested too deeply", [{"field": "body", "message": "too deeply nested"}]
        ) from None
    except ValueError as exc:
        raise ValidationError(
            "request body is not valid JSON",
            [
                {
                    "field": "body",
                    "message": f"invalid JSON at line {getattr(exc, 'lineno', '?')} column {getattr(exc, 'colno', '?')}",
                }
            ],
        ) from None


def error_response(exc: BaseException) -> func.HttpResponse:
    """Map an exception to its HTTP status; internals are logged, never returned."""
    if isinstance(exc, ValidationError):
        return json_response(400, error_body(exc.message, exc.details))
    if isinstance(exc, UnauthorizedError):
        return json_response(401, error_body(exc.message, exc.details))
    if isinstance(exc, ForbiddenError):
        return json_response(403, error_body(exc.message, exc.details))
    if isinstance(exc, PayloadTooLargeError):
        return json_response(
            413, error_body("request body is larger than 1 MiB", [{"field": "body", "message": "too large"}])
        )
    if isinstance(exc, UnsupportedMediaTypeError):
        return json_response(
            415,
            error_body(
                "content type must be application/json",
                [{"field": "content-type", "message": "expected application/json"}],
            ),
        )
    if isinstance(exc, PartnerNotFoundError):  # issue 11 (a subclass of IncidentNotFoundError: keep it first)
        return json_response(404, error_body("partner not found"))
    if isinstance(exc, IncidentNotFoundError):
        return json_response(404, error_body("incident not found"))
    if isinstance(exc, ConflictError):
        return json_response(409, error_body(str(exc) or "conflict"))
    if isinstance(exc, EvidenceChainBrokenError):
        return json_response(409, error_body("evidence chain broken"))
    ref = uuid.uuid4().hex[:12]
    if isinstance(exc, ConfigurationError):
        log.error("configuration error (ref %s): %s", ref, exc)
        return json_response(
            500,
            error_body(
                "the service is misconfigured", [{"field": "configuration", "message": f"see logs, reference {ref}"}]
            ),
        )
    if isinstance(exc, RecursionError):
        return json_response(
            400, error_body("request body is nested too deeply", [{"field": "body", "message": "too deeply nested"}])
        )
    log.error("unhandled error (ref %s)", ref, exc_info=exc)
    status = 503 if _is_dependency_error(exc) else 500
    return json_response(
        status,
        error_body(
            "the request could not be completed; retry later" if status == 503 else "internal error",
            [{"field": "server", "message": f"reference {ref}"}],
        ),
    )


def _is_dependency_error(exc: BaseException) -> bool:
    mod = type(exc).__module__
    return mod.startswith(("azure.", "aiohttp", "requests", "urllib3", "httpx")) or isinstance(
        exc, (ConnectionError, TimeoutError)
    )


def handle_errors(fn: Callable) -> Callable:
    """Decorator: any exception becomes the mapped error response."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args, **kwargs):
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                return error_response(exc)

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            return error_response(exc)

    return wrapper
