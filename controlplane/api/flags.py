"""GET /api/v1/flags through Django: the fallback of the ASGI fast path, same bytes and ETag.

It never holds a request: a long-poll here would hold a thread (under ASGI, Django's only sync
thread) and a database connection. The fast path holds long-polls; whatever it hands over (a
key it does not know yet, a cache still loading, a WSGI deployment) is answered at once, as if
`wait=0`.
"""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.views import APIView

from controlplane.api.auth import client_ip
from controlplane.api.output import FlagsDocumentOutput
from controlplane.api.permissions import IsRouterReader
from controlplane.clients import recorder
from controlplane.flagdoc import RenderedDocument, etag_matches, render_document
from controlplane.models import ApiKey, Router
from controlplane.selectors import current_revision


def current_document(router_id: int) -> RenderedDocument:
    router = Router.objects.select_related("current_revision").get(pk=router_id)
    return render_document(
        router_id=router.pk, slug=router.slug, revision=current_revision(router=router)
    )


class FlagsApi(APIView):
    permission_classes = [IsRouterReader]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "wait",
                float,
                description="Long-poll: with a current If-None-Match, hold up to N s (max 60) "
                "until the revision changes (held by the ASGI fast path; this view answers at "
                "once).",
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
            del response["Content-Type"]  # no body, so no type (HttpResponse says text/html)
        else:
            response = HttpResponse(document.body, content_type="application/json")
        response["ETag"] = document.etag
        response["Cache-Control"] = "no-cache"
        return response
