"""Login: Django's login view; the failed-login limit lives in the backend (login_limit)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse

from dashboard.login_limit import LoginLimited


class RoutePlaneLoginView(LoginView):
    """Django's login; an address over the failed-login limit gets this page with 429."""

    template_name = "dashboard/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().post(request, *args, **kwargs)
        except LoginLimited as limited:
            form = self.get_form_class()(request)
            context = self.get_context_data(form=form, locked_out=True)
            response = self.render_to_response(context, status=429)
            response["Retry-After"] = str(limited.retry_after)
            return response

    def form_invalid(self, form: Any) -> HttpResponse:
        return self.render_to_response(self.get_context_data(form=form), status=400)
