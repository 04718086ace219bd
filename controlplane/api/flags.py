"""GET /api/v1/flags through Django: the fallback of the ASGI fast path, same bytes and ETag."""

from __future__ import annotations

import time

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from rest_framework.request import Request
from rest_framework.views import APIView

from controlplane.api.auth import client_ip
from controlplane.api.output import FlagsDocumentOutput
from controlplane.api.permissions import IsRouterReader
from controlplane.clients import recorder
from controlplane.flagdoc import RenderedDocument, etag_matches, render_document
from controlplane.models import ApiKey, Router
from controlplane.selectors import current_revision

MAX_WAIT_SECONDS = 60
POLL_INTERVAL_SECONDS = 0.1


def current_document(router_id: int) -> RenderedDocument:
    router = Router.objects.select_related("current_revision").get(pk=router_id)
    return render_document(
        router_id=router.pk, slug=router.slug, revision=current_revision(router=router)
    )


def clamp_wait(raw: str | None) -> float:
    try:
        return max(0.0, min(float(raw or 0), MAX_WAIT_SECONDS))
    except ValueError:
        return 0.0


class FlagsApi(APIView):
    permission_classes = [IsRouterReader]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "wait",
                float,
                description="Long-poll: with a current If-None-Match, hold up to N s (max 60) "
                "until the revision changes.",
            ),
            OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER),
        ],
        responses={
            200: FlagsDocumentOutput,
            304: OpenApiResponse(description="Not modified: the ETag is current."),
        },
        description="The router's flags document (served by the ASGI fast path; this is the "
        "same answer through Django).",
    )
    def get(self, request: Request) -> HttpResponse:
        if not isinstance(request.auth, ApiKey):
            raise PermissionDenied("The flags document is read with a router's API key.")
        document = current_document(request.auth.router_id)
        if_none_match = request.headers.get("If-None-Match")
        wait = clamp_wait(request.query_params.get("wait"))
        deadline = time.monotonic() + wait
        # Long-poll only while the caller already holds the current document.
        while etag_matches(if_none_match, document.etag) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL_SECONDS)
            if not ApiKey.objects.filter(pk=request.auth.pk, revoked_at__isnull=True).exists():
                # Revoked while waiting: refused within a second, as on the fast path.
                raise AuthenticationFailed("Invalid or revoked API key.")
            document = current_document(request.auth.router_id)
        # In memory; flushed in one batch every few seconds, never a write per poll.
        recorder.record(
            router_id=request.auth.router_id,
            client_id=request.headers.get("X-Routeplane-Client"),
            user_agent=request.headers.get("User-Agent", ""),
            revision=document.revision,
            ip=client_ip(request),
        )
        if etag_matches(if_none_match, document.etag):
            response = HttpResponse(status=304)
        else:
            response = HttpResponse(document.body, content_type="application/json")
        response["ETag"] = document.etag
        response["Cache-Control"] = "no-cache"
        return response
