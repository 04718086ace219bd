"""ASGI entry point (`config.asgi:application`, also `controlplane.asgi:application`): the flags
and ingestion fast paths in front of Django, behind the request-body limit
(controlplane.bodylimit).

Run it with several workers if you like (`uvicorn config.asgi:application --workers 2`): each
process keeps its own flags cache, fed by PostgreSQL LISTEN/NOTIFY. Routers hold long-polls of
up to 60 s; on SIGINT/SIGTERM they are answered at once, so a restart does not wait them out
(the SDK simply polls again).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()

# Imported after Django is set up: the fast paths render and store with the models.
from controlplane.bodylimit import BodyLimit  # noqa: E402
from controlplane.clients import recorder  # noqa: E402
from controlplane.flagserver import FlagServer, FlagsFastPath  # noqa: E402
from tracking.fastpath import EventsFastPath  # noqa: E402

flag_server = FlagServer(recorder=recorder)
flags_and_django = FlagsFastPath(django_application, flag_server)
application = BodyLimit(EventsFastPath(flags_and_django, flag_server))
