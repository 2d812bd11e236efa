"""Picking the score threshold on validation images and keeping it in the checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cgc.coco import encode_mask
from cgc.inference import Detections, LoadedModel
from cgc.score_threshold import (ScoreThresholdChoice, ThresholdRow, image_counts, pick_score_threshold,
                                 record_score_threshold, score_threshold_of)
from cgc.model.box_masks import BoxMasks
from cgc.checkpoint import load_checkpoint, save_checkpoint


def square(y: int, x: int, size: int = 4, shape: tuple[int, int] = (12, 12)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y : y + size, x : x + size] = True
    return mask


def test_counts_follow_what_predict_would_write() -> None:
    """Two objects; a true detection at 0.9, a duplicate of it at 0.6, the second object at 0.3."""
    probabilities = np.stack([square(0, 0), square(0, 1), square(6, 6)]).astype(np.float32) * 0.9
    probabilities[1] *= 0.99  # the duplicate is less sure everywhere: it loses every shared pixel
    found = Detections(np.zeros((3, 4), np.float32), np.array([0.9, 0.6, 0.3], np.float32),
                       BoxMasks.from_dense(probabilities))
    truth = [encode_mask(square(0, 0)), encode_mask(square(6, 6))]
    counts = image_counts(found, truth, (0.2, 0.5, 0.7, 0.95))
    # At 0.2 and 0.5 the duplicate keeps one column of its own (4 px): written, unmatched.
    assert counts.tolist() == [[3, 2], [2, 1], [1, 1], [0, 0]]


def test_best_f1_wins_and_ties_go_to_the_higher_threshold() -> None:
    rows = [ThresholdRow(0.3, 10, 8, 8), ThresholdRow(0.5, 8, 7, 8), ThresholdRow(0.7, 7, 7, 8), ThresholdRow(0.9, 2, 2, 8)]
    assert [round(row.f1, 4) for row in rows] == [0.8889, 0.875, 0.9333, 0.4]
    choice = pick_score_threshold(rows, "val.json", 5)
    assert choice.threshold == 0.7 and choice.precision == 1.0 and choice.recall == 0.875
    assert choice.predictions_per_instance == pytest.approx(7 / 8) and choice.images == 5
    tie = [ThresholdRow(0.4, 4, 4, 4), ThresholdRow(0.6, 4, 4, 4), ThresholdRow(0.8, 3, 3, 4)]
    assert pick_score_threshold(tie, "val.json", 1).threshold == 0.6


def test_recorded_threshold_is_kept_in_the_checkpoint_and_used(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, 5, {"model": {"w": torch.ones(2)}, "config": {"mask_head": "gfr"}}, keep=3)
    choice = ScoreThresholdChoice(0.65, 0.9, 0.95, 0.86, 0.9, "val.json", 20)
    record_score_threshold(path, choice)
    state = load_checkpoint(path)
    assert state["score_threshold"] == choice.to_json() and torch.equal(state["model"]["w"], torch.ones(2))
    assert not list(path.parent.glob(".*.tmp"))
    loaded = LoadedModel(None, None, torch.device("cpu"), path, 0.65)  # type: ignore[arg-type]
    assert score_threshold_of(loaded, None) == 0.65
    assert score_threshold_of(loaded, 0.2) == 0.2  # --score-thr wins
    assert score_threshold_of(LoadedModel(None, None, torch.device("cpu"), path, None), None) == 0.5  # type: ignore[arg-type]
