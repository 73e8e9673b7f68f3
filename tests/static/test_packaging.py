"""A non-editable install (``pip install '.[prod]'``, a wheel) carries static/, so /app/ works from site-packages and
not only from a checkout: the wheel is built from a copy of the tree, installed into a folder of its own, and that
installed copy serves the app."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "static"

# The installed copy serves /app/ and a few of its files, in a process whose path starts with the install.
SERVE = """
import sys, webhooks, webhooks.pages as pages
from pathlib import Path
assert Path(webhooks.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), webhooks.__file__
app = webhooks.create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": "x" * 32, "INSTANCE_PATH": sys.argv[2]})
client = app.test_client()
for path in sys.argv[3:]:
    with client.get(path) as r:
        print(path, r.status_code, len(r.get_data()))
print("static", pages.STATIC)
"""


def _run(*args: str, timeout: int = 600, **kw) -> str:
    """Run a command; its output, or a failure showing its errors."""
    done = subprocess.run(args, check=False, capture_output=True, text=True, timeout=timeout, **kw)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _tree_copy(dest: Path) -> Path:
    """The tracked sources (no .git, no instance/, no build leftovers) to build from, so the build writes nothing
    into the checkout."""
    ignore = shutil.ignore_patterns(".git", "instance", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                    ".hypothesis", "tests", "benchmarks")
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


@pytest.mark.slow
def test_a_wheel_carries_static_and_the_installed_copy_serves_the_app(tmp_path):
    src = _tree_copy(tmp_path / "src")
    wheels = tmp_path / "wheels"
    # No build isolation: the build uses this environment's setuptools and needs no network.
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(src))
    [wheel] = wheels.glob("xinma-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {p.relative_to(ROOT).as_posix() for p in STATIC.rglob("*") if p.is_file()}
    assert expected and expected <= names, sorted(expected - names)
    assert not {n for n in names if n.startswith("static/") and n.endswith(".py")}  # data, not code

    target = tmp_path / "site"
    _run(sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel))
    assert (target / "static" / "index.html").is_file() and (target / "webhooks" / "pages.py").is_file()

    paths = ["/app/", "/app/js/main.js", "/app/js/pages/offers.js", "/app/vendor/weui/weui.min.css",
             "/app/js/server.js", "/app/nothing-here.js"]
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = _run(sys.executable, "-c", SERVE, str(target), str(tmp_path / "instance"), *paths, timeout=120, env=env,
               cwd=tmp_path)
    status = {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if line.startswith("/")}
    assert status == {**{p: 200 for p in paths[:-1]}, "/app/nothing-here.js": 404}
    assert f"static {target / 'static'}" in out  # served from the install, not the checkout
