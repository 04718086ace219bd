"""The running instance of the run command, so `manage.py` beside it joins it.

`python -m config.run` writes `$ROUTEPLANE_DATA_DIR/run.json` once the database is migrated
and removes it when it stops. Settings read it when DATABASE_URL is unset: a management
command run from the repository then uses the same embedded PostgreSQL and Redis and the
same DEBUG default as the server. Only URLs of embedded servers are recorded (they carry no
password); the SECRET_KEY never is: with DEBUG off the command needs it in its environment.

Settings never start embedded servers themselves: a process that started them would have to
stop them, and one that joins an unmigrated database fails in a confusing way. Without a URL,
a running instance or a running embedded server they raise `SetupRequired`, which manage.py
prints as one line.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

FILENAME = "run.json"


class SetupRequired(ImproperlyConfigured):
    """Nothing to connect to: the message says what to run or set."""


@dataclass(frozen=True)
class Instance:
    pid: int  # the run command's supervisor
    url: str
    debug: bool
    database_url: str | None  # None: the run command was given DATABASE_URL (not recorded)
    redis_url: str | None


def record_path(data_dir: Path) -> Path:
    return data_dir / FILENAME


def record(data_dir: Path, instance: Instance) -> None:
    path = record_path(data_dir)
    # Written whole then renamed, so a reader never sees half a file; private to this user.
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(instance), fh)
    partial.replace(path)


def forget(data_dir: Path) -> None:
    with contextlib.suppress(OSError):
        path = record_path(data_dir)
        recorded = json.loads(path.read_text())
        if recorded.get("pid") == os.getpid():  # never another run's record
            path.unlink()


def running_instance(data_dir: Path) -> Instance | None:
    """The recorded instance whose supervisor is still alive, else None."""
    try:
        instance = Instance(**json.loads(record_path(data_dir).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    try:
        os.kill(instance.pid, 0)
    except ProcessLookupError:
        return None  # killed without cleaning up: its record means nothing
    except PermissionError:
        pass
    return instance


def joined_url(
    name: str, run: Instance | None, data_dir: Path, running_embedded: Callable[[], str | None]
) -> str:
    """`name`'s URL when it is unset: the running instance's, else a running embedded
    server's (started by hand: `python -m config.embedded start`), else SetupRequired."""
    if run is not None:
        recorded = run.database_url if name == "DATABASE_URL" else run.redis_url
        if recorded:
            return recorded
        raise SetupRequired(
            f"{name} is not set, and the Routeplane running with data dir {data_dir} was given "
            f"its own {name}: set the same {name} for this command."
        )
    url = running_embedded()
    if url:
        return url
    raise SetupRequired(
        f"{name} is not set and no Routeplane is running with data dir {data_dir}: run "
        "./scripts/run.sh first (same ROUTEPLANE_DATA_DIR) and this command in another "
        "terminal from the repository, or set DATABASE_URL and REDIS_URL."
    )
