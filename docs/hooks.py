"""MkDocs hook: the command reference's table of every `cgc train` setting, written at each build from the
settings themselves (cgc/config.py and the presets), as mkdocs-click writes the options, so it cannot drift."""

from __future__ import annotations

from typing import Any

MARKER = "<!-- cgc train settings -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER not in markdown:
        return markdown
    from cgc.cli.options import settings_reference
    from cgc.config import PRESETS, TrainConfig

    presets = {name: preset.settings for name, preset in PRESETS.items() if preset.settings}
    return markdown.replace(MARKER, settings_reference(TrainConfig, presets))
