"""Start a real Label Studio server for the tests, and stop it afterwards.

The server lives in its own virtual environment (`make labelstudio`, default
`.venv-labelstudio/`), because its pinned dependencies clash with ours. It runs on 127.0.0.1
on a free port, with an SQLite data folder in a temporary directory, one known admin user and
a fixed legacy token (hence `--enable-legacy-api-token`: Label Studio 1.23 turns legacy tokens
off by default). Sentry, analytics and the PyPI version check are switched off, so it never
reaches the internet.

`CGC_LABEL_STUDIO_BIN` may point at another `label-studio` executable.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN_ENV = "CGC_LABEL_STUDIO_BIN"
DEFAULT_BIN = REPO_ROOT / ".venv-labelstudio" / "bin" / "label-studio"
START_TIMEOUT = float(os.environ.get("CGC_LABEL_STUDIO_START_TIMEOUT", "300"))
OFFLINE_ENV = {
    "SENTRY_DSN": "",
    "FRONTEND_SENTRY_DSN": "",
    "LATEST_VERSION_CHECK": "false",
    "COLLECT_ANALYTICS": "false",
    "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "false",
    "DEBUG": "false",
    "LOG_LEVEL": "WARNING",
    "PYTHONUNBUFFERED": "1",
    # `cgc serve` runs on this machine, a loopback address, which Label Studio 1.23 refuses to call by default
    "ML_BLOCK_LOCAL_IP": "false",
    "SSRF_PROTECTION_ENABLED": "false",
}


@dataclass(frozen=True)
class LabelStudioServer:
    url: str
    api_key: str
    username: str
    password: str
    data_dir: Path
    log_path: Path


def label_studio_binary() -> Path:
    return Path(os.environ.get(BIN_ENV) or DEFAULT_BIN)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (it forks workers), then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def running_label_studio(base_dir: Path, binary: Path | None = None) -> Iterator[LabelStudioServer]:
    binary = binary or label_studio_binary()
    data_dir = base_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = LabelStudioServer(
        url=url,
        api_key=secrets.token_hex(20),
        username="admin@example.com",
        password="pw-" + secrets.token_hex(8),  # token_urlsafe may start with "-", which argparse reads as an option
        data_dir=data_dir,
        log_path=base_dir / "label-studio.log",
    )
    env = {**os.environ, **OFFLINE_ENV, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "HOME": str(base_dir)}
    for key in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "VIRTUAL_ENV"):
        env.pop(key, None)
    command = [
        str(binary), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
        "--data-dir", str(data_dir), f"--username={server.username}", f"--password={server.password}",
        f"--user-token={server.api_key}", "--enable-legacy-api-token",
    ]
    with open(server.log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=base_dir,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(url):
            if process.poll() is not None:
                raise RuntimeError(f"label-studio exited with {process.returncode}:\n{_log_tail(server.log_path)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"label-studio did not answer /health in {START_TIMEOUT:.0f} s:\n"
                                   f"{_log_tail(server.log_path)}")
            time.sleep(1)
        yield server
    finally:
        _stop(process)
