"""One error shape for the whole API: 400 {"errors": {"field": ["message"]}} (README, "API")."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from controlplane.api.output import change_request_dict
from controlplane.approvals import ApprovalRequired
from controlplane.change_requests import file_change_request
from controlplane.services import NothingToStepBackTo, StaleRevision

log = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


def errors_response(errors: dict[str, list[str]], code: int = 400, **extra: Any) -> Response:
    return Response({"errors": errors, **extra}, status=code)


def _as_field_errors(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {
            str(k): [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in detail.items()
        }
    if isinstance(detail, list):
        return {"non_field_errors": [str(m) for m in detail]}
    return {"non_field_errors": [str(detail)]}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApprovalRequired):
        # The write's transaction rolled back; what it would have published waits for a
        # second operator as a change request.
        held = file_change_request(held=exc)
        return Response(
            {"change_request": change_request_dict(held), "changed": False},
            status=status.HTTP_202_ACCEPTED,
        )
    if isinstance(exc, StaleRevision):
        return errors_response(
            {"If-Match": [str(exc)]},
            status.HTTP_412_PRECONDITION_FAILED,
            current_revision=exc.current,
        )
    if isinstance(exc, NothingToStepBackTo):
        return errors_response({"phase": [str(exc)]}, status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return errors_response({k: list(v) for k, v in exc.message_dict.items()})
        return errors_response({"non_field_errors": list(exc.messages)})
    if isinstance(exc, DataError):
        # The last line of "never a 500 for bad input": a value that passed validation but that
        # PostgreSQL refuses (out of range, bad encoding). The write's transaction rolled back.
        log.warning("database refused a request value: %s", exc)
        return errors_response({"non_field_errors": ["a value is out of range or not storable"]})
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if isinstance(exc, exceptions.ValidationError):
        return errors_response(_as_field_errors(exc.detail))
    if isinstance(exc, exceptions.ParseError):
        return errors_response({"body": [str(exc.detail)]})
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, Http404):
        response.data = {"detail": str(exc) or "Not found."}
    return response
