"""ASGI entry point (`controlplane.asgi:application`): the flags fast path in front of Django,
behind the request-body limit (controlplane.bodylimit).

Run it with several workers if you like (`uvicorn controlplane.asgi:application --workers 2`):
each process keeps its own flags cache, fed by PostgreSQL LISTEN/NOTIFY. Routers hold
long-polls of up to 60 s: give uvicorn `--timeout-graceful-shutdown 2` (or similar) so a
restart does not wait them out; the SDK simply polls again.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
django_application = get_asgi_application()

# Imported after Django is set up: the fast path renders documents with the models.
from controlplane.bodylimit import BodyLimit  # noqa: E402
from controlplane.clients import recorder  # noqa: E402
from controlplane.flagserver import FlagServer, FlagsFastPath  # noqa: E402

flag_server = FlagServer(recorder=recorder)
application = BodyLimit(FlagsFastPath(django_application, flag_server))
