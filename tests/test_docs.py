"""The documentation: a short README whose links resolve, and a site that builds in strict mode."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 200


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the rest belongs in docs/"


def test_readme_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    assert targets, "no link found: the pattern is wrong"
    missing = [target for target in targets if not target.startswith("http") and not (ROOT / target).exists()]
    assert not missing, missing


def test_every_docs_page_is_in_the_navigation() -> None:
    """mkdocs lists a page left out of `nav` only as INFO; a newcomer would never find it."""
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {path.relative_to(ROOT / "docs").as_posix() for path in (ROOT / "docs").rglob("*.md")}
    missing = sorted(page for page in pages if f" {page}" not in nav)
    assert not missing, missing


@pytest.mark.slow
def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    """A broken link, a missing page or a command whose help cannot render fails here (strict: warnings fail)."""
    if shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("mkdocs is not installed in this environment: run `make install`")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={"NO_MKDOCS_2_WARNING": "1",
                                                                                      "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    commands = (tmp_path / "site" / "commands" / "index.html").read_text()
    for command in ("cgc annotate import", "cgc weaklabels build", "cgc train", "cgc serve", "cgc crf tune"):
        assert command in commands, command  # generated from the command line itself
    for setting in ("network.mask.output_window_per_side", "label_update.crf.w1", "network.rpn.anchor_sizes",
                    "run.checkpoint_every"):  # every setting, by docs/hooks.py
        assert f"<code>{setting}</code>" in commands, setting
    assert "cgc train settings" not in commands  # the marker was replaced
