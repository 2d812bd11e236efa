"""Training presets are files beside the code: each loads, the paper's states its sources, departures are documented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cgc.errors import InputError
from cgc.config import PRESETS, TrainConfig, read_presets, resolve_config, settled
from cgc.settings import flattened, setting_paths

DOCS = Path(__file__).resolve().parents[1] / "docs" / "method" / "paper.md"


def test_the_default_preset_is_the_configuration_s_own_defaults() -> None:
    assert list(PRESETS)[0] == "default" and PRESETS["default"].settings == {}
    assert resolve_config() == resolve_config("default") == settled(TrainConfig())


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_resolves_and_round_trips_through_config_json(name: str) -> None:
    from cgc.config import config_from_values

    config = resolve_config(name)
    values = flattened(json.loads(json.dumps(config.to_json())))
    for path, value in flattened(PRESETS[name].settings).items():
        assert values[path] == (list(value) if isinstance(value, tuple) else value), path
    assert config_from_values(json.loads(json.dumps(config.to_json())), "config.json") == config


def test_the_paper_preset_gives_a_source_for_every_setting_it_states() -> None:
    paper = PRESETS["paper"]
    assert set(paper.notes) == set(flattened(paper.settings))
    assert all(len(source) > 10 for source in paper.notes.values())


def test_every_departure_of_the_default_from_the_paper_is_in_the_documentation() -> None:
    """A default changed away from the paper (or back) must change docs/method/paper.md's table too."""
    default = flattened(resolve_config("default").to_json())
    paper = flattened(resolve_config("paper").to_json())
    departures = {path for path in flattened(PRESETS["paper"].settings) if default[path] != paper[path]}
    assert departures == {"network.mask.output_window_per_side", "network.suppression.rescore",
                          "network.suppression.method", "label_update.every", "label_update.weight"}
    table = DOCS.read_text()
    given = {path: f"`--set {path}=" if set_only else f"`--{setting.metadata['flag'] or setting.name.replace('_', '-')} "
             for path, setting, _, set_only in setting_paths(TrainConfig)}
    for path in departures:  # as the user gives it: its option, or --set for a setting without one
        assert given[path] in table, path


def test_a_preset_file_naming_an_unknown_setting_is_refused(tmp_path: Path) -> None:
    (tmp_path / "default.json").write_text(json.dumps({"summary": "s", "description": "d", "settings": {}}))
    (tmp_path / "odd.json").write_text(json.dumps({"summary": "s", "description": "d",
                                                   "settings": {"solver": {"lr_rate": 1}}}))
    with pytest.raises(InputError, match="odd.json: unknown setting solver.lr_rate"):
        read_presets(tmp_path)
