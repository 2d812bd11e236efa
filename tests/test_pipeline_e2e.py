"""The whole label pipeline through the installed `cgc` command, as `make demo` runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CGC = [sys.executable, "-m", "cgc.cli"]


def cgc(*args: str) -> str:
    done = subprocess.run(CGC + list(args), check=True, capture_output=True, text=True)
    return done.stdout


@pytest.mark.slow
def test_sample_to_weak_labels_beats_the_naive_rule(tmp_path: Path) -> None:
    sample = tmp_path / "sample"
    cgc("sample", "--out", str(sample), "--images", "40", "--seed", "3")
    cgc("annotate", "import", "--from-export", str(sample / "labelstudio_export.json"), "--out", str(tmp_path / "boxes.json"))
    cgc("export", "coco", "--format", "ilso", "--root", str(sample), "--out", str(tmp_path / "truth.json"))
    scores = {}
    for rule in ("resolve-shared", "all-in-box"):
        out = tmp_path / rule
        cgc("weaklabels", "build", "--images", str(sample / "imgs"), "--masks", str(sample / "masks"),
            "--boxes", str(tmp_path / "boxes.json"), "--out", str(out), "--rule", rule, "--overlays", str(tmp_path / f"{rule}-overlays"))
        cgc("weaklabels", "compare", "--labels", str(out / "annotations.json"), "--truth", str(tmp_path / "truth.json"),
            "--json", str(tmp_path / f"{rule}.json"))
        scores[rule] = json.loads((tmp_path / f"{rule}.json").read_text())
        assert len(list((tmp_path / f"{rule}-overlays").glob("*.jpg"))) == scores[rule]["images_compared"]
    assert scores["resolve-shared"]["images_compared"] >= 38
    assert scores["resolve-shared"]["mean_iou"] >= 0.85
    assert scores["resolve-shared"]["mean_iou"] > scores["all-in-box"]["mean_iou"] + 0.03


def test_user_mistakes_print_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "export.json"
    bad.write_text('{"not": "an export"')
    done = subprocess.run(CGC + ["annotate", "import", "--from-export", str(bad), "--out", str(tmp_path / "b.json")],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: {bad}:") and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "b.json").exists()
