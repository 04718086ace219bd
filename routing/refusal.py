"""The control plane refused a key: a `PermissionError` that reads as one line.

The migration guide's scripts (examples/) call `flags.disable(...)` without a try: with a
router key the contract's `PermissionError` would end them with a traceback through SDK
internals, while the message alone says what to do. So the first refusal installs an
excepthook that prints an uncaught refusal as `routeplane: <message>` (exit status 1, as
for any uncaught exception). Every other exception, and any excepthook the program set
itself, is left alone.
"""

from __future__ import annotations

import sys
from types import TracebackType


class KeyRefused(PermissionError):
    """The control plane refused this API key for this request (HTTP 401 or 403)."""


def refused(message: str) -> KeyRefused:
    """The exception to raise; makes sure an uncaught one is printed as one line."""
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _print_refusal
    return KeyRefused(message)


def _print_refusal(
    kind: type[BaseException], value: BaseException, traceback: TracebackType | None
) -> None:
    if issubclass(kind, KeyRefused):
        print(f"routeplane: {value}", file=sys.stderr)
    else:
        sys.__excepthook__(kind, value, traceback)
