# Celery app loaded with Django so @shared_task binds to it.
from controlplane.celery import app as celery_app

__all__ = ["celery_app"]
