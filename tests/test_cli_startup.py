"""The command line starts without torch or the HTTP stack: `cgc --help`, `cgc sample` or `cgc annotate import`
need none of it."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_command_line_does_not_load_torch() -> None:
    code = "import sys, cgc.cli; print(sorted(m for m in ('torch', 'torchvision', 'httpx') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
