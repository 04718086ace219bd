# Routeplane control plane: web (uvicorn + the flags fast path), Celery worker and beat all run
# this image with different commands (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    # Settings find templates and static files next to the source, so run from /app.
    PYTHONPATH=/app \
    STATIC_ROOT=/app/staticfiles \
    DEBUG=0 \
    PORT=8000 \
    WEB_CONCURRENCY=2 \
    # Per worker: connections + tasks beyond it get 503 at once (1,000 long-pollers fit in 2
    # workers); a stop waits this many seconds for requests in flight (below Docker's 10 s).
    WEB_LIMIT_CONCURRENCY=2048 \
    WEB_GRACEFUL_SHUTDOWN_SECONDS=8

WORKDIR /app

# Dependencies first (cached while only the source changes). routellm/torch are not needed:
# the control plane never routes prompts itself.
COPY pyproject.toml README.md ./
COPY config/__init__.py config/__init__.py
COPY controlplane/__init__.py controlplane/__init__.py
COPY dashboard/__init__.py dashboard/__init__.py
COPY routing/__init__.py routing/__init__.py
COPY tracking/__init__.py tracking/__init__.py
RUN pip install .

COPY manage.py ./
COPY config ./config
COPY controlplane ./controlplane
COPY dashboard ./dashboard
COPY routing ./routing
COPY tracking ./tracking
COPY templates ./templates
RUN pip install --no-deps . \
    # Settings are read at build time: give them throwaway values (nothing connects).
    && DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
       SECRET_KEY=build-only python manage.py collectstatic --noinput -v 0 \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin routeplane

USER routeplane
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/healthz', timeout=2)"

# The ASGI entry point with the flags fast path; uvloop + httptools (uvicorn[standard]).
CMD ["sh", "-c", "exec uvicorn config.asgi:application --host 0.0.0.0 --port ${PORT} --workers ${WEB_CONCURRENCY} --loop uvloop --http httptools --no-access-log --proxy-headers --limit-concurrency ${WEB_LIMIT_CONCURRENCY} --timeout-graceful-shutdown ${WEB_GRACEFUL_SHUTDOWN_SECONDS}"]
