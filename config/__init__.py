"""Project wiring: settings, URLs, ASGI/WSGI entry points, Celery, the run command.

The top layer: it may import every app; no app imports it (see .importlinter).
"""

# The Celery app is loaded with Django so @shared_task binds to it.
from config.celery import app as celery_app

__all__ = ["celery_app"]
