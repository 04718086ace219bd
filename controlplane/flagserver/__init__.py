"""The flags fast path: `GET /api/v1/flags` answered from memory in front of Django."""

from controlplane.flagserver.app import FlagsFastPath
from controlplane.flagserver.server import FlagServer

__all__ = ["FlagServer", "FlagsFastPath"]
