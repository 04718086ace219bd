"""Actor: who a write is attributed to in revisions and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    label: str  # "user:alice", "key:rp_Ab12Cd34", "cli:create_router", "system:guardrail"
    ip: str | None = None

    @classmethod
    def for_user(cls, user: Any, ip: str | None = None) -> Actor:
        return cls(f"user:{user.get_username()}", ip)

    @classmethod
    def for_key(cls, key: Any, ip: str | None = None) -> Actor:
        return cls(f"key:{key.prefix}", ip)

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(f"system:{name}")

    @classmethod
    def cli(cls, command: str) -> Actor:
        import getpass

        try:
            who = getpass.getuser()
        except Exception:  # no passwd entry in some containers
            who = "unknown"
        return cls(f"cli:{command}:{who}")

    def __str__(self) -> str:
        return self.label
