"""Headless Chromium (Debian package) with every network path closed, for page checks."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # any network lookup fails: offline render
    "--virtual-time-budget=20000", "--window-size=1280,1000",
)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def run(page: Path, *action: str) -> str:
    """Open ``page`` from disk and perform ``action`` (e.g. --dump-dom); return stdout."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *action, page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    if result.returncode != 0:
        raise RuntimeError(f"chromium failed on {page}: {result.stderr[-2000:]}")
    return result.stdout


def rendered_dom(page: Path) -> str:
    return run(page, "--dump-dom")


def screenshot(page: Path, png: Path) -> Path:
    png.parent.mkdir(parents=True, exist_ok=True)
    run(page, f"--screenshot={png}")
    return png
