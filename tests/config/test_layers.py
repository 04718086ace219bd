"""The import-linter contract in .importlinter (run by .ci/run): it keeps the layers one-way and
fails on a reversed import. Runs lint-imports on a copy of the packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "dashboard", "tracking", "controlplane", "routing")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.timeout(300)


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / ".importlinter")],
        cwd=tree,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("layers")
    shutil.copy(ROOT / ".importlinter", copy)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            copy / package,
            ignore=shutil.ignore_patterns("__pycache__", "static", "*.yaml", "*.csv"),
        )
    return copy


def test_lint_imports__the_repository__kept(tree):
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "reversed_import"),
    [
        ("controlplane/selectors.py", "import tracking.reports"),
        ("routing/flags.py", "import django.db"),
    ],
)
def test_lint_imports__reversed_import__fails_naming_it(tree, module, reversed_import):
    path = tree / module
    original = path.read_text()
    path.write_text(original + f"\n{reversed_import}  # reversed\n")
    try:
        result = lint_imports(tree)
    finally:
        path.write_text(original)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert module.removesuffix(".py").replace("/", ".") in result.stdout
