"""WhiteNoise for static files, made async-capable for the ASGI deployment.

WhiteNoiseMiddleware (6.x) is sync-only and answers with a file iterator. Under ASGI, Django
then logs "StreamingHttpResponse must consume synchronous iterators" for every static file (the
API docs load several) and runs the whole middleware chain through a thread. Here a file is
served with an async iterator that reads it off the event loop, as Django's own
ASGIStaticFilesHandler does; every other request passes straight on, async.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings as django_settings
from django.http import HttpRequest, HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware


async def _read_off_loop(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    # Static files are small (the largest, swagger-ui's bundle, is about 1.5 MB): read at once.
    for chunk in await sync_to_async(list, thread_sensitive=False)(chunks):
        yield chunk


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any = None, settings: Any = django_settings) -> None:
        super().__init__(get_response, settings=settings)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if self.autorefresh:  # DEBUG: looks files up on disk per request
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(
                request.path_info
            )
        else:
            static_file = self.files.get(request.path_info)
        if static_file is None:
            return await self.get_response(request)
        response = self.serve(static_file, request)
        if response.streaming:
            response.streaming_content = _read_off_loop(response.streaming_content)
        return response
