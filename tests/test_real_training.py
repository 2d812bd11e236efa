"""benchmarks/real_training.py end to end on one small shared real set at a toy size, so that the benchmark cannot
rot (the benchmark itself is not a test: its tables are in docs/method/training.md)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "real_training.py"
REAL = ROOT.parent / "shared" / "data" / "real"


@pytest.mark.slow
def test_real_training_benchmark_trains_calibrates_and_scores_on_one_set(tmp_path: Path) -> None:
    if not all((REAL / name / "annotations.json").is_file() for name in ("mugs", "pets-val")):
        pytest.skip(f"{REAL}: the shared real photographs (mugs, pets-val) are not here; CI has them")
    out = tmp_path / "rows.json"
    tiny = [f"--train-option={word}" for setting in ("network.min_size=96", "network.max_size=128",
                                                                "run.checkpoint_every=2")
            for word in ("--set", setting)]
    done = subprocess.run([sys.executable, str(SCRIPT), "--real", str(REAL), "--sets", "mugs", "--labels",
                           "weak, masks", "--iterations", "2", "--work", str(tmp_path / "work"),
                           "--out", str(out), *tiny], cwd=ROOT, capture_output=True, text=True, timeout=1800,
                          check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [row["labels"] for row in rows] == ["weak, masks"]
    for row in rows:
        assert row["command"][:4] == ["cgc", "train", "--preset", "cpu"] and "2" in row["command"]
        scores = row["scores"]["pets-val"]
        assert 0 <= scores["coco_mask_AP"] <= 100 and 0 <= scores["boxes_coco_AP"] <= 100
    assert (tmp_path / "work" / "mugs" / "weak-masks.json").is_file()  # only the kinds asked for were built
    assert not (tmp_path / "work" / "mugs" / "weak-boxes-alone.json").exists()
    assert not (tmp_path / "work" / "mugs" / "full.json").exists()
    assert "scored on pets-val" in done.stdout
