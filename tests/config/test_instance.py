"""config.instance: what manage.py beside the run command joins, and its refusals."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from config.instance import (
    Instance,
    SetupRequired,
    forget,
    joined_url,
    record,
    running_instance,
)
from tests.servers import ROOT


def an_instance(pid: int, **fields) -> Instance:
    values = {
        "pid": pid,
        "url": "http://127.0.0.1:8000/",
        "debug": True,
        "database_url": "postgresql://postgres:@/routeplane?host=/tmp/x",
        "redis_url": "redis://127.0.0.1:6390/0",
    }
    return Instance(**(values | fields))


def test_record__live_supervisor__read_back_private_to_the_user(tmp_path):
    record(tmp_path, an_instance(os.getpid()))

    assert running_instance(tmp_path) == an_instance(os.getpid())
    assert (tmp_path / "run.json").stat().st_mode & 0o077 == 0


def test_running_instance__supervisor_gone__none(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record(tmp_path, an_instance(dead.pid))

    assert running_instance(tmp_path) is None


def test_forget__only_this_process_record(tmp_path):
    record(tmp_path, an_instance(os.getppid()))
    forget(tmp_path)
    assert (tmp_path / "run.json").exists()

    record(tmp_path, an_instance(os.getpid()))
    forget(tmp_path)
    assert not (tmp_path / "run.json").exists()


def test_joined_url__instance__its_url_without_asking_embedded(tmp_path):
    url = joined_url("REDIS_URL", an_instance(1), tmp_path, lambda: pytest.fail("asked"))
    assert url == "redis://127.0.0.1:6390/0"


def test_joined_url__instance_given_its_own_url__asks_for_the_same(tmp_path):
    with pytest.raises(SetupRequired, match="set the same DATABASE_URL"):
        joined_url("DATABASE_URL", an_instance(1, database_url=None), tmp_path, lambda: None)


def test_joined_url__nothing_running__says_what_to_run(tmp_path):
    with pytest.raises(SetupRequired, match=r"run ./scripts/run.sh first .* or set DATABASE_URL"):
        joined_url("DATABASE_URL", None, tmp_path, lambda: None)


def test_manage_py__no_url_nothing_running__one_line_and_starts_nothing(tmp_path):
    data_dir = tmp_path / "never-created"
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY")
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "list_api_keys", "demo"],
        cwd=ROOT,
        env=environ | {"ROUTEPLANE_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert done.stderr.startswith("manage.py: DATABASE_URL is not set and no Routeplane is")
    assert "./scripts/run.sh" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not data_dir.exists()  # no embedded server was started there


def test_manage_py__database_url_set__works_without_an_instance(tmp_path):
    # Tests and CI: the URLs win, no run.json is read.
    record(tmp_path, an_instance(os.getpid(), database_url="postgres://nowhere:1/none"))
    done = subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.DATABASE_URL)"],
        cwd=ROOT,
        env=os.environ | {"ROUTEPLANE_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == os.environ["DATABASE_URL"]
