"""What cgc does with bad input: one table of (command, input, expected one-line error or result).

Each case prepares its inputs in a fresh folder, runs the real command line and checks that it
ended with exit status 1 and a single `Error: ...` line holding the expected words, or that it
succeeded; `intact` lists files that must still be there, unchanged, afterwards. Add a row for
every new kind of bad input.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import huge_png, short_run, tiny_config, truncated

from cgc.cli import cgc
from cgc.fileio import OUTPUT_MARK
from cgc.checkpoint import plain_state
from cgc.config import save_config


@dataclass(frozen=True)
class Inputs:
    """What a case can use: a 12-scene sample, its true boxes, weak labels for training, and a fresh folder."""

    sample: Path
    boxes: Path
    labels: tuple[Path, Path]
    work: Path


@dataclass(frozen=True)
class Case:
    name: str
    args: Callable[[Inputs], list[str]]
    prepare: Callable[[Inputs], None] = lambda inputs: None
    error: str | None = None  # words of the one-line error; None: the command must succeed
    status: int = 1  # 2: click's own usage error (a usage line, then the error line)
    intact: tuple[str, ...] = field(default=())  # files under `work` that must survive unchanged
    excluded: tuple[str, str] | None = None  # a build that succeeds but excludes (file name, words of the reason)


def user_files(folder: Path) -> None:
    """A folder of someone's own files, which cgc must never delete."""
    folder.mkdir(parents=True)
    (folder / "holiday.jpg").write_bytes(b"not cgc's")
    (folder / "notes.txt").write_text("mine")


def rebuilt_with_note(inputs: Inputs) -> None:
    """An earlier `weaklabels build` output into which the user put notes.txt."""
    assert CliRunner().invoke(cgc, build(inputs)).exit_code == 0
    (inputs.work / "weak" / "notes.txt").write_text("mine")


def trained_copy(inputs: Inputs) -> None:
    """A one-iteration run folder at work/run."""
    from cgc.training.engine import train as train_run

    train_run(tiny_config(inputs.labels, inputs.work / "run", **short_run(1)), progress=False)


def evil_checkpoint(path: Path, marker: Path) -> None:
    """A checkpoint whose unpickling would create `marker`: loading it must not run that."""

    class Payload:
        def __reduce__(self):
            return pathlib.Path.touch, (marker,)

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {}, "config": {}, "iteration": 1, "payload": Payload()}, path)


def evil_run(inputs: Inputs) -> None:
    """A run folder whose newest checkpoint is `evil_checkpoint`, with a valid config.json beside it."""
    run = inputs.work / "run"
    evil_checkpoint(run / "checkpoints" / "checkpoint_0000001.pt", inputs.work / "ran-code")
    save_config(tiny_config(inputs.labels, run), run / "config.json")


def one_picture_results(folder: Path, images_json: bool, file_name: str = "a.jpg", truth_mask: object = None,
                        predicted_mask: object = None, truth_name: str = "a.jpg") -> None:
    """truth.json with picture `truth_name` (id 1), and a prediction for `file_name` numbered 7 in results.json."""
    mask = {"size": [10, 10], "counts": "0T3"}  # the whole 10x10 picture
    (folder / "truth.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": truth_name, "height": 10, "width": 10}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": truth_mask or mask}]}))
    (folder / "results.json").write_text(json.dumps([{"image_id": 7, "segmentation": predicted_mask or mask,
                                                      "score": 0.9}]))
    if images_json:
        (folder / "images.json").write_text(json.dumps([{"id": 7, "file_name": file_name, "height": 10, "width": 10}]))


def truth_changed(path: Path, **changes: object) -> None:
    """The first annotation of a COCO file with `changes` (json writes NaN and Infinity, as some tools do)."""
    data = json.loads(path.read_text())
    data["annotations"][0].update(changes)
    path.write_text(json.dumps(data))


def config_changed(path: Path, **sections: dict) -> None:
    from cgc.settings import merged

    path.write_text(json.dumps(merged(json.loads(path.read_text()), sections)))


def masks_rescaled(inputs: Inputs, value: int) -> None:
    """A copy of the sample whose masks are saved as 0/`value` instead of 0/255."""
    shutil.copytree(inputs.sample, inputs.work / "sample")
    for path in (inputs.work / "sample" / "masks").glob("*.png"):
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(path), np.where(mask > 127, value, 0).astype(np.uint8))


def train(inputs: Inputs, data: Path | None = None, images: Path | None = None) -> list[str]:
    return ["train", "--data", str(data or inputs.labels[0]), "--images", str(images or inputs.labels[1]),
            "--out", str(inputs.work / "run"), "--device", "cpu"]


def resized_copy(source: Path, target: Path, scale: float) -> None:
    target.mkdir()
    for path in source.glob("*.jpg"):
        picture = cv2.imread(str(path))
        cv2.imwrite(str(target / path.name), cv2.resize(picture, None, fx=scale, fy=scale))


def relabelled(source: Path, target: Path, file_name: str) -> None:
    """A copy of the weak labels whose first picture is named `file_name`."""
    data = json.loads(source.read_text())
    data["images"][0]["file_name"] = file_name
    target.write_text(json.dumps(data))


def first_label_changed(source: Path, target: Path, **changes: object) -> None:
    """A copy of the weak labels whose first annotation has `changes`."""
    data = json.loads(source.read_text())
    data["annotations"][0].update(changes)
    target.write_text(json.dumps(data))


def copy_with(inputs: Inputs, relative: str, data: bytes) -> None:
    """A copy of the sample under work/sample with the file `relative` replaced by `data`."""
    shutil.copytree(inputs.sample, inputs.work / "sample")
    (inputs.work / "sample" / relative).write_bytes(data)


def build_on_copy(inputs: Inputs) -> list[str]:
    copy = inputs.work / "sample"
    return ["weaklabels", "build", "--images", str(copy / "imgs"), "--masks", str(copy / "masks"),
            "--boxes", str(inputs.boxes), "--out", str(inputs.work / "weak"), "--workers", "1"]


def export_with_second_folder(source: Path, target: Path) -> None:
    """The sample's export plus a copy of its first task whose picture has the same name in another folder."""
    tasks = json.loads(source.read_text())
    twin = json.loads(json.dumps(tasks[0]))
    twin["id"] = max(task["id"] for task in tasks) + 1
    twin["data"] = {key: "/data/local-files/?d=setB/sample_00001.jpg" for key in twin["data"]}
    target.write_text(json.dumps(tasks + [twin]))


def cut_checkpoint(path: Path) -> None:
    """Half of a real checkpoint file, as a full disk leaves a copy."""
    from cgc.checkpoint import save_checkpoint

    written = save_checkpoint(path.parent.parent, 1, {"model": {"w": torch.ones(4)}, "config": {}}, keep=1)
    data = written.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def two_pictures_one_stem(folder: Path) -> None:
    folder.mkdir()
    picture = np.full((32, 32, 3), 128, np.uint8)
    cv2.imwrite(str(folder / "a.jpg"), picture)
    cv2.imwrite(str(folder / "a.png"), picture)


def box_file_with(source: Path, target: Path, bbox: list[float]) -> None:
    """A copy of the box file whose first box is `bbox` (json writes NaN and Infinity, as some tools do)."""
    data = json.loads(source.read_text())
    data["annotations"][0]["bbox"] = bbox
    target.write_text(json.dumps(data))


def build(inputs: Inputs, *extra: str, out: Path | None = None, boxes: Path | None = None) -> list[str]:
    return ["weaklabels", "build", "--images", str(inputs.sample / "imgs"), "--masks", str(inputs.sample / "masks"),
            "--boxes", str(boxes or inputs.boxes), "--out", str(out or inputs.work / "weak"), "--workers", "1", *extra]


def sample(inputs: Inputs, *extra: str) -> list[str]:
    return ["sample", "--out", str(inputs.work / "out"), "--images", "2", "--width", "64", "--height", "64",
            "--workers", "1", *extra]


def predict(inputs: Inputs, checkpoint: str, out: Path) -> list[str]:
    return ["predict", "--checkpoint", str(inputs.work / checkpoint), "--images", str(inputs.sample / "imgs"),
            "--out", str(out), "--device", "cpu"]


CASES = [
    # 1. Never delete a folder cgc did not write
    Case("build --overlays into the input pictures",
         lambda i: build(i, "--overlays", str(i.sample / "imgs")), error="is also the input --images"),
    Case("build --overlays into a folder of other files",
         lambda i: build(i, "--overlays", str(i.work / "mine")), lambda i: user_files(i.work / "mine"),
         error="is not empty and was not written by cgc", intact=("mine/holiday.jpg", "mine/notes.txt")),
    Case("build --overlays into another kind of cgc output",
         lambda i: build(i, "--overlays", str(i.work / "out")), lambda i: shutil.copytree(i.sample, i.work / "out"),
         error="holds a cgc sample output", intact=("out/labelstudio_export.json",)),
    Case("build --overlays over a folder of other files with --overwrite: they stay",
         lambda i: build(i, "--overlays", str(i.work / "mine"), "--overwrite"), lambda i: user_files(i.work / "mine"),
         intact=("mine/holiday.jpg", "mine/notes.txt")),
    Case("build --out again keeps a note the user put in the previous output",
         lambda i: build(i), lambda i: rebuilt_with_note(i), intact=("weak/notes.txt",)),
    Case("build --out beside a user folder named .weak.old",
         lambda i: build(i), lambda i: user_files(i.work / ".weak.old"), intact=(".weak.old/holiday.jpg",)),
    Case("build --out over a user folder named .weak.old beside an earlier output",
         lambda i: build(i), lambda i: (CliRunner().invoke(cgc, build(i)), user_files(i.work / ".weak.old")),
         intact=(".weak.old/notes.txt",)),
    # 1b. An output is never one of the command's inputs (files or folders, links resolved)
    Case("annotate import --out the export itself",
         lambda i: ["annotate", "import", "--from-export", str(i.work / "export.json"), "--out", str(i.work / "export.json")],
         lambda i: shutil.copy(i.sample / "labelstudio_export.json", i.work / "export.json"),
         error="is also the input --from-export", intact=("export.json",)),
    Case("annotate import --report the export itself",
         lambda i: ["annotate", "import", "--from-export", str(i.work / "export.json"), "--out", str(i.work / "b.json"),
                    "--report", str(i.work / "export.json")],
         lambda i: shutil.copy(i.sample / "labelstudio_export.json", i.work / "export.json"),
         error="is also the input --from-export", intact=("export.json",)),
    Case("annotate import --out a link to the export",
         lambda i: ["annotate", "import", "--from-export", str(i.work / "export.json"), "--out", str(i.work / "link.json")],
         lambda i: (shutil.copy(i.sample / "labelstudio_export.json", i.work / "export.json"),
                    (i.work / "link.json").symlink_to(i.work / "export.json")),
         error="is also the input --from-export", intact=("export.json",)),
    Case("annotate import --out a hard link to the export",
         lambda i: ["annotate", "import", "--from-export", str(i.work / "export.json"), "--out", str(i.work / "hard.json")],
         lambda i: (shutil.copy(i.sample / "labelstudio_export.json", i.work / "export.json"),
                    os.link(i.work / "export.json", i.work / "hard.json")),
         error="is also the input --from-export", intact=("export.json",)),
    Case("eval --out the ground truth",
         lambda i: ["eval", "--predictions", str(i.work), "--data", str(i.work / "truth.json"), "--out", str(i.work / "truth.json")],
         lambda i: one_picture_results(i.work, images_json=True), error="is also the input --data", intact=("truth.json",)),
    Case("eval --out the predictions' results.json",
         lambda i: ["eval", "--predictions", str(i.work), "--data", str(i.work / "truth.json"), "--out", str(i.work / "results.json")],
         lambda i: one_picture_results(i.work, images_json=True), error="is also the input --predictions' results.json",
         intact=("results.json",)),
    Case("crf tune --out the ground truth",
         lambda i: ["crf", "tune", "--predictions", str(i.work), "--gt", str(i.work / "truth.json"), "--images",
                    str(i.sample / "imgs"), "--out", str(i.work / "truth.json")],
         lambda i: one_picture_results(i.work, images_json=True), error="is also the input --gt", intact=("truth.json",)),
    Case("crf refine --overwrite --out the folder that holds --params",
         lambda i: ["crf", "refine", "--predictions", str(i.work / "pred"), "--images", str(i.sample / "imgs"), "--out",
                    str(i.work / "tuning"), "--params", str(i.work / "tuning" / "tune.json"), "--overwrite"],
         lambda i: user_files(i.work / "tuning") or (i.work / "tuning" / "tune.json").write_text("{}"),
         error="holds the input --params", intact=("tuning/tune.json",)),
    Case("predict --overwrite --out the run folder it reads the model from",
         lambda i: predict(i, "run", i.work / "run") + ["--overwrite"], lambda i: trained_copy(i),
         error="holds the input --checkpoint", intact=("run/config.json",)),
    Case("train --out the folder of its pictures", lambda i: train(i) + ["--out", str(i.labels[1])],
         error="is also the input --images"),
    Case("weaklabels compare --json the truth",
         lambda i: ["weaklabels", "compare", "--labels", str(i.labels[0]), "--truth", str(i.work / "t.json"),
                    "--json", str(i.work / "t.json")], lambda i: shutil.copy(i.labels[0], i.work / "t.json"),
         error="is also the input --truth", intact=("t.json",)),
    Case("build --out and --overlays one folder", lambda i: build(i, "--overlays", str(i.work / "weak")),
         error="is given as both --out and --overlays"),
    Case("build --overlays over its own previous overlays",
         lambda i: build(i, "--overlays", str(i.work / "ov")),
         lambda i: (i.work / "ov").mkdir() or (i.work / "ov" / OUTPUT_MARK).write_text('{"kind": "weak-label overlays"}')),
    Case("build --out a folder of other files", lambda i: build(i), lambda i: user_files(i.work / "weak"),
         error="is not empty and was not written by cgc", intact=("weak/notes.txt",)),
    Case("build --out the folder that holds the pictures",
         lambda i: build(i, out=i.sample), error="holds the input"),
    Case("build --overlays inside --out", lambda i: build(i, "--overlays", str(i.work / "weak" / "overlays"))),
    Case("sample --out a folder of other files",
         lambda i: sample(i), lambda i: user_files(i.work / "out"),
         error="is not empty and was not written by cgc", intact=("out/holiday.jpg",)),
    Case("sample --out a file", lambda i: sample(i), lambda i: (i.work / "out").write_text("x"),
         error="is a file", status=2, intact=("out",)),
    Case("sample --out a previous sample", lambda i: sample(i), lambda i: shutil.copytree(i.sample, i.work / "out")),
    Case("predict --out a folder of other files",
         lambda i: predict(i, "run", i.work / "mine"), lambda i: user_files(i.work / "mine"),
         error="is not empty and was not written by cgc", intact=("mine/notes.txt",)),
    Case("predict --out the picture folder", lambda i: predict(i, "run", i.sample / "imgs"),
         error="is also the input --images"),
    Case("crf refine --out a folder of other files",
         lambda i: ["crf", "refine", "--predictions", str(i.work / "pred"), "--images", str(i.sample / "imgs"),
                    "--out", str(i.work / "mine")],
         lambda i: user_files(i.work / "mine"), error="is not empty and was not written by cgc",
         intact=("mine/notes.txt",)),
    # 2. A checkpoint runs no code
    Case("predict with a checkpoint that would run code",
         lambda i: predict(i, "run", i.work / "pred"), evil_run, error="refused: holds more than tensors"),
    Case("eval with a checkpoint that would run code",
         lambda i: ["eval", "--checkpoint", str(i.work / "run"), "--images", str(i.sample / "imgs"),
                    "--data", str(i.boxes), "--device", "cpu"], evil_run, error="refused: holds more than tensors"),
    Case("train --resume from a checkpoint that would run code",
         lambda i: ["train", "--resume", "--out", str(i.work / "run")], evil_run, error="refused: holds more than tensors"),
    Case("calibrate with a checkpoint that would run code",
         lambda i: ["calibrate", "--checkpoint", str(i.work / "run"), "--images", str(i.sample / "imgs"),
                    "--data", str(i.boxes), "--device", "cpu"], evil_run, error="refused: holds more than tensors"),
    # 5. Training reads the pictures its labels were made for, and nothing outside --images
    Case("train on pictures of another size than their labels",
         lambda i: train(i, images=i.work / "big"), lambda i: resized_copy(i.labels[1], i.work / "big", 2.0),
         error="but annotations.json labels it at 128x96"),
    Case("train on labels whose file_name leaves the image folder",
         lambda i: train(i, data=i.work / "escape.json"),
         lambda i: relabelled(i.labels[0], i.work / "escape.json", "../../etc/passwd"), error="points outside the image folder"),
    Case("train on labels whose file_name is absolute",
         lambda i: train(i, data=i.work / "escape.json"),
         lambda i: relabelled(i.labels[0], i.work / "escape.json", "/etc/hostname"), error="points outside the image folder"),
    # 7. A box that is not a number
    Case("build from a box file with a NaN bbox", lambda i: build(i, boxes=i.work / "nan.json"),
         lambda i: box_file_with(i.boxes, i.work / "nan.json", [float("nan"), 0, 10, 10]), error="bbox' of 4 finite numbers"),
    Case("build from a box file with an infinite bbox", lambda i: build(i, boxes=i.work / "inf.json"),
         lambda i: box_file_with(i.boxes, i.work / "inf.json", [0, 0, float("inf"), 10]), error="bbox' of 4 finite numbers"),
    # 13. Training labels are checked before the model is built
    Case("train on a label with broken RLE counts", lambda i: train(i, data=i.work / "bad.json"),
         lambda i: first_label_changed(i.labels[0], i.work / "bad.json", segmentation={"size": [96, 128], "counts": 17}),
         error="unreadable segmentation"),
    Case("train on a label with a polygon of two numbers", lambda i: train(i, data=i.work / "bad.json"),
         lambda i: first_label_changed(i.labels[0], i.work / "bad.json", segmentation=[[1, 2]]),
         error="unreadable segmentation"),
    Case("train on a label whose mask has another size", lambda i: train(i, data=i.work / "bad.json"),
         lambda i: first_label_changed(i.labels[0], i.work / "bad.json", segmentation={"size": [10, 10], "counts": "0T3"}),
         error="mask size [10, 10] differs"),
    Case("train on a label with an infinite bbox", lambda i: train(i, data=i.work / "bad.json"),
         lambda i: first_label_changed(i.labels[0], i.work / "bad.json", bbox=[0, 0, float("inf"), 3]),
         error="bbox' of 4 finite numbers"),
    # 11. A header that declares a huge picture; 16. a truncated JPEG: excluded with the reason, the rest goes on
    Case("build with a picture whose header declares 50000x50000 pixels",
         lambda i: build_on_copy(i), lambda i: copy_with(i, "imgs/sample_00002.jpg", huge_png()),
         excluded=("sample_00002.jpg", "declares 50000x50000 pixels, more than the limit")),
    Case("build with a mask whose header declares 50000x50000 pixels",
         lambda i: build_on_copy(i), lambda i: copy_with(i, "masks/sample_00003.png", huge_png()),
         excluded=("sample_00003.jpg", "declares 50000x50000 pixels")),
    Case("build under a lower --max-pixels",
         lambda i: ["--max-pixels", "200000"] + build_on_copy(i),
         lambda i: copy_with(i, "imgs/sample_00001.jpg", cv2.imencode(".jpg", np.zeros((600, 800, 3), np.uint8))[1].tobytes()),
         excluded=("sample_00001.jpg", "declares 800x600 pixels, more than the limit of 200000")),
    Case("build with a half-truncated JPEG",
         lambda i: build_on_copy(i), lambda i: copy_with(i, "imgs/sample_00004.jpg", truncated(i.sample / "imgs" / "sample_00004.jpg")),
         excluded=("sample_00004.jpg", "truncated JPEG")),
    Case("predict on a picture whose header declares 50000x50000 pixels",
         lambda i: ["predict", "--checkpoint", str(i.work / "run"), "--images", str(i.work / "big.png"), "--out", str(i.work / "p")],
         lambda i: (i.work / "big.png").write_bytes(huge_png()), error="declares 50000x50000 pixels"),
    # 12. An output path blocked by a file: one line, before any work, for every command that writes
    *[Case(f"{name} with its output blocked by a file", args, lambda i: (i.work / "blocker").write_text("mine"),
           error="cannot write or read here: a file is in the way of a folder", intact=("blocker",))
      for name, args in (
          ("annotate import", lambda i: ["annotate", "import", "--from-export", str(i.sample / "labelstudio_export.json"),
                                         "--out", str(i.work / "blocker" / "boxes.json")]),
          ("weaklabels build", lambda i: build(i, out=i.work / "blocker" / "weak")),
          ("weaklabels build --overlays", lambda i: build(i, "--overlays", str(i.work / "blocker" / "overlays"))),
          ("weaklabels compare", lambda i: ["weaklabels", "compare", "--labels", str(i.labels[0]), "--truth", str(i.labels[0]),
                                            "--json", str(i.work / "blocker" / "quality.json")]),
          ("export coco", lambda i: ["export", "coco", "--format", "ilso", "--root", str(i.sample),
                                     "--out", str(i.work / "blocker" / "truth.json")]),
          ("sample", lambda i: ["sample", "--out", str(i.work / "blocker" / "s"), "--images", "1"]),
          ("train", lambda i: ["train", "--data", str(i.labels[0]), "--images", str(i.labels[1]),
                               "--out", str(i.work / "blocker" / "run")]),
          ("predict", lambda i: predict(i, "run", i.work / "blocker" / "pred")),
          ("eval", lambda i: ["eval", "--predictions", str(i.work / "results.json"), "--match-by-id", "--data",
                              str(i.work / "results.json"), "--out", str(i.work / "blocker" / "metrics.json")]),
          ("crf refine", lambda i: ["crf", "refine", "--predictions", str(i.work), "--images", str(i.sample / "imgs"),
                                    "--out", str(i.work / "blocker" / "refined")]),
          ("crf tune", lambda i: ["crf", "tune", "--predictions", str(i.work), "--gt", str(i.labels[0]),
                                  "--images", str(i.sample / "imgs"), "--out", str(i.work / "blocker" / "tune.json")]),
      )],
    # 6. Two pictures of one name in one Label Studio project
    Case("annotate import of two folders' x.jpg", lambda i: ["annotate", "import", "--from-export", str(i.work / "export.json"),
                                                             "--out", str(i.work / "boxes.json")],
         lambda i: export_with_second_folder(i.sample / "labelstudio_export.json", i.work / "export.json"),
         error="both show a picture named 'sample_00001.jpg'"),
    # 8. Two pictures would write one mask
    Case("predict on a.jpg beside a.png",
         lambda i: ["predict", "--checkpoint", str(i.work / "run"), "--images", str(i.work / "pics"), "--out", str(i.work / "p")],
         lambda i: two_pictures_one_stem(i.work / "pics"), error="two files share the name 'a'"),
    # Beyond the list: each command's main inputs missing, empty or damaged
    Case("predict with a truncated checkpoint",
         lambda i: predict(i, "run/checkpoints/checkpoint_0000001.pt", i.work / "pred"),
         lambda i: cut_checkpoint(i.work / "run" / "checkpoints" / "checkpoint_0000001.pt"), error="cannot read checkpoint"),
    Case("predict with a run folder that has no checkpoint", lambda i: predict(i, "run", i.work / "pred"),
         lambda i: (i.work / "run").mkdir(), error="no checkpoint"),
    Case("predict on an empty folder",
         lambda i: ["predict", "--checkpoint", str(i.work / "run"), "--images", str(i.work / "empty"), "--out", str(i.work / "p")],
         lambda i: (i.work / "empty").mkdir(), error="no images in this folder"),
    Case("eval without its ground truth",
         lambda i: ["eval", "--predictions", str(i.work / "results.json"), "--data", str(i.work / "nothing.json")],
         lambda i: one_picture_results(i.work, images_json=True), error="nothing.json"),
    Case("export coco from a missing folder",
         lambda i: ["export", "coco", "--format", "ilso", "--root", str(i.work / "none"), "--out", str(i.work / "t.json")],
         error="none"),
    Case("weaklabels compare on a file that is not JSON",
         lambda i: ["weaklabels", "compare", "--labels", str(i.work / "bad.json"), "--truth", str(i.labels[0])],
         lambda i: (i.work / "bad.json").write_text("{not json"), error="not valid JSON"),
    Case("crf refine without a prediction folder",
         lambda i: ["crf", "refine", "--predictions", str(i.work / "none"), "--images", str(i.sample / "imgs"),
                    "--out", str(i.work / "r")], error="prediction folder not found"),
    Case("build with an empty mask folder",
         lambda i: ["weaklabels", "build", "--images", str(i.sample / "imgs"), "--masks", str(i.work / "empty"),
                    "--boxes", str(i.boxes), "--out", str(i.work / "weak")], lambda i: (i.work / "empty").mkdir(),
         error="no image could be labelled: all 12 were excluded (12 for 'mask file not found')"),
    Case("annotate import of an export that is not a list of tasks",
         lambda i: ["annotate", "import", "--from-export", str(i.work / "e.json"), "--out", str(i.work / "b.json")],
         lambda i: (i.work / "e.json").write_text('{"tasks": 3}'), error="e.json"),
    # Round two: every reader validates at the boundary (no hang inside pycocotools, no silent miscount)
    Case("eval a ground truth whose RLE runs do not add up to the picture",
         lambda i: ["eval", "--predictions", str(i.work), "--data", str(i.work / "truth.json")],
         lambda i: one_picture_results(i.work, images_json=True, truth_mask={"size": [10, 10], "counts": "0T3T3"}),
         error="RLE runs add up to 200 pixels, not the picture's 100"),
    Case("eval predictions whose RLE string is cut off",
         lambda i: ["eval", "--predictions", str(i.work), "--data", str(i.work / "truth.json")],
         lambda i: one_picture_results(i.work, images_json=True, predicted_mask={"size": [10, 10], "counts": "0To"}),
         error="prediction 1: unreadable segmentation (RLE counts that are not pycocotools' compressed string)"),
    Case("eval a ground truth with a polygon of an odd number of coordinates",
         lambda i: ["eval", "--predictions", str(i.work), "--data", str(i.work / "truth.json")],
         lambda i: one_picture_results(i.work, images_json=True, truth_mask=[[0, 0, 5, 0, 5, 5, 0]]),
         error="a polygon of 7 numbers"),
    Case("eval a ground truth with an empty mask",
         lambda i: ["eval", "--predictions", str(i.work), "--data", str(i.work / "truth.json")],
         lambda i: one_picture_results(i.work, images_json=True, truth_mask={"size": [10, 10], "counts": "T3"}),
         error="annotation 1 (image 1) has an empty mask"),
    Case("train on a label whose RLE runs go past the picture", lambda i: train(i, data=i.work / "bad.json"),
         lambda i: first_label_changed(i.labels[0], i.work / "bad.json",
                                       segmentation={"size": [96, 128], "counts": [12288, 5000]}),
         error="RLE runs add up to 17288 pixels, not the picture's 12288"),
    Case("eval with a ground truth picture named outside --images",
         lambda i: ["eval", "--checkpoint", str(i.work / "run"), "--images", str(i.sample / "imgs"),
                    "--data", str(i.work / "truth.json"), "--device", "cpu"],
         lambda i: (trained_copy(i), one_picture_results(i.work, images_json=True, truth_name="../../../etc/hostname")),
         error="points outside the image folder"),
    Case("crf refine with images.json naming a picture outside --images",
         lambda i: ["crf", "refine", "--predictions", str(i.work), "--images", str(i.sample / "imgs"),
                    "--out", str(i.work / "refined")],
         lambda i: one_picture_results(i.work, images_json=True, file_name="/etc/hostname"),
         error="points outside the image folder"),
    Case("crf tune with a NaN range",
         lambda i: ["crf", "tune", "--predictions", str(i.work), "--gt", str(i.work / "truth.json"), "--images",
                    str(i.sample / "imgs"), "--w1-range", "nan:1:3", "--out", str(i.work / "t.json")],
         lambda i: one_picture_results(i.work, images_json=True), error="need three finite numbers", status=2),
    Case("crf tune with an infinite range",
         lambda i: ["crf", "tune", "--predictions", str(i.work), "--gt", str(i.work / "truth.json"), "--images",
                    str(i.sample / "imgs"), "--theta-beta-range", "1:1:inf", "--out", str(i.work / "t.json")],
         lambda i: one_picture_results(i.work, images_json=True), error="need three finite numbers", status=2),
    Case("crf tune with a grid of ten million settings",
         lambda i: ["crf", "tune", "--predictions", str(i.work), "--gt", str(i.work / "truth.json"), "--images",
                    str(i.sample / "imgs"), "--w1-range", "1:0.001:100", "--out", str(i.work / "t.json")],
         lambda i: one_picture_results(i.work, images_json=True), error="settings for the coarse pass, more than 2000"),
    *[Case(f"{option} nan", args, error="'nan' is not a finite number", status=2) for option, args in (
        ("--match-iou", lambda i: ["annotate", "import", "--from-export", str(i.sample / "labelstudio_export.json"),
                                   "--out", str(i.work / "b.json"), "--match-iou", "nan"]),
        ("--score-thr", lambda i: predict(i, "run", i.work / "p") + ["--score-thr", "nan"]),
        ("--lr", lambda i: train(i) + ["--lr", "nan"]),
        ("--set data.hflip", lambda i: train(i) + ["--set", "data.hflip=nan"]),
        ("--set network.mask.output_window_per_side",
         lambda i: train(i) + ["--set", "network.mask.output_window_per_side=nan"]),
        ("--edge-weight", lambda i: build(i, "--edge-weight", "nan")),
    )],
    Case("eval a ground truth whose iscrowd is a word",
         lambda i: ["eval", "--predictions", str(i.work), "--data", str(i.work / "truth.json")],
         lambda i: (one_picture_results(i.work, images_json=True), truth_changed(i.work / "truth.json", iscrowd="yes")),
         error="has 'iscrowd' 'yes': it must be 0 or 1"),
    Case("eval a ground truth with an infinite area",
         lambda i: ["eval", "--predictions", str(i.work), "--data", str(i.work / "truth.json")],
         lambda i: (one_picture_results(i.work, images_json=True),
                    truth_changed(i.work / "truth.json", area=float("inf"))), error="has 'area' inf"),
    Case("eval predictions with a NaN bbox",
         lambda i: ["eval", "--predictions", str(i.work), "--data", str(i.work / "truth.json")],
         lambda i: (one_picture_results(i.work, images_json=True),
                    (i.work / "results.json").write_text(json.dumps([{"image_id": 7, "score": 0.9, "bbox": [float("nan")] * 4,
                                                                      "segmentation": {"size": [10, 10], "counts": "0T3"}}]))),
         error="prediction 1 has a 'bbox' that is not 4 finite numbers"),
    Case("calibrate on labels without an instance",
         lambda i: ["calibrate", "--checkpoint", str(i.work / "run"), "--images", str(i.sample / "imgs"), "--data",
                    str(i.work / "empty.json"), "--device", "cpu"],
         lambda i: (trained_copy(i), (i.work / "empty.json").write_text('{"images": [], "annotations": []}')),
         error="the validation labels hold no instance"),
    Case("train --resume from a config.json with a NaN learning rate",
         lambda i: ["train", "--resume", "--out", str(i.work / "run"), "--iterations", "2"],
         lambda i: (trained_copy(i), config_changed(i.work / "run" / "config.json", solver={"lr": float("nan")})),
         error="config.json: --lr nan: must be a finite number"),
    Case("crf refine --params with a NaN weight",
         lambda i: ["crf", "refine", "--predictions", str(i.work), "--images", str(i.sample / "imgs"), "--out",
                    str(i.work / "refined"), "--params", str(i.work / "tune.json")],
         lambda i: (one_picture_results(i.work, images_json=True),
                    (i.work / "tune.json").write_text(json.dumps({"best": {"w1": float("nan")}}))),
         error="its 'best' setting: --w1 nan: must be a finite number"),
    Case("build with masks saved as 0/100", lambda i: build_on_copy(i), lambda i: masks_rescaled(i, 100)),
    Case("build with masks saved as 0/2", lambda i: build_on_copy(i), lambda i: masks_rescaled(i, 2)),
    # 3. Predictions are paired with the ground truth by file name
    Case("eval a results file whose ids cannot be paired",
         lambda i: ["eval", "--predictions", str(i.work / "results.json"), "--data", str(i.work / "truth.json")],
         lambda i: one_picture_results(i.work, images_json=False), error="--match-by-id"),
    Case("eval results whose pictures the ground truth does not hold",
         lambda i: ["eval", "--predictions", str(i.work / "results.json"), "--data", str(i.work / "truth.json")],
         lambda i: one_picture_results(i.work, images_json=True, file_name="b.jpg"), error="(b.jpg)"),
    Case("eval results paired by file name",
         lambda i: ["eval", "--predictions", str(i.work), "--data", str(i.work / "truth.json")],
         lambda i: one_picture_results(i.work, images_json=True)),
]


@pytest.fixture(scope="module")
def shared_inputs(sample_dir: Path, true_box_file: Path, tiny_labels: tuple[Path, Path]) -> tuple[Path, Path, tuple[Path, Path]]:
    return sample_dir, true_box_file, tiny_labels


def snapshot(work: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    return {name: (work / name).read_bytes() for name in names}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input(case: Case, shared_inputs: tuple[Path, Path, tuple[Path, Path]], tmp_path: Path) -> None:
    sample_dir, boxes, labels = shared_inputs
    inputs = Inputs(sample_dir, boxes, labels, tmp_path)
    pictures_before = sorted(path.name for path in (sample_dir / "imgs").iterdir())
    case.prepare(inputs)
    before = snapshot(tmp_path, case.intact)
    result = CliRunner().invoke(cgc, case.args(inputs))
    if case.error is None:
        assert result.exit_code == 0, result.output
        if case.excluded is not None:
            report = json.loads((tmp_path / "weak" / "report.json").read_text())
            reasons = {entry["file_name"]: entry["reason"] for entry in report["excluded_images"]}
            name, words = case.excluded
            assert list(reasons) == [name] and words in reasons[name], reasons
    else:
        lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith(("Usage:", "Try "))]
        assert result.exit_code == case.status and "Traceback" not in result.output, result.output
        assert len(lines) == 1 and lines[0].startswith("Error: ") and case.error in lines[0], result.output
    assert snapshot(tmp_path, case.intact) == before
    assert sorted(path.name for path in (sample_dir / "imgs").iterdir()) == pictures_before
    assert not (tmp_path / "ran-code").exists()


def test_a_second_writer_of_a_run_folder_fails_at_once(shared_inputs, tmp_path: Path) -> None:
    """While one `cgc train` holds the run folder, another into the same --out fails in one line and writes nothing."""
    from cgc.fileio import exclusive_lock

    _, _, labels = shared_inputs
    inputs = Inputs(shared_inputs[0], shared_inputs[1], labels, tmp_path)
    with exclusive_lock(tmp_path / "run", "`cgc train`"):
        result = CliRunner().invoke(cgc, train(inputs) + ["--iterations", "1"])
    assert result.exit_code == 1 and "another `cgc train` is writing this folder now" in result.output, result.output
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == [".cgc-lock"]


def test_checkpoints_hold_only_tensors_and_plain_types() -> None:
    state = plain_state({"k2": {"1": np.float32(0.25)}, "n": [np.int64(3), (1, "a")], "w": torch.ones(2)})
    assert type(state["k2"]["1"]) is float and type(state["n"][0]) is int and state["n"][1] == (1, "a")
    with pytest.raises(TypeError, match="ndarray"):
        plain_state({"rng": np.zeros(3)})


def test_a_checkpoint_cgc_wrote_loads_back(tmp_path: Path) -> None:
    from cgc.checkpoint import add_to_checkpoint, load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path, 5, {"model": {"w": torch.ones(2)}, "config": {"lr_steps": (1, 2)},
                                         "label_update": {"k2": {"3": np.float64(0.5)}}}, keep=1)
    add_to_checkpoint(path, "score_threshold", {"threshold": 0.85})
    state = load_checkpoint(path)
    assert state["iteration"] == 5 and state["label_update"]["k2"]["3"] == 0.5 and state["score_threshold"]["threshold"] == 0.85
    assert json.dumps(state["config"])


@pytest.fixture(scope="module")
def trained_run(tiny_labels: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of one training iteration on the tiny labels: enough for the commands that load a checkpoint."""
    from cgc.training.engine import train as train_run

    run = tmp_path_factory.mktemp("trained") / "run"
    train_run(tiny_config(tiny_labels, run, **short_run(1)), progress=False)
    return run


def a_picture(folder: Path, name: str = "a.jpg", size: int = 10) -> Path:
    folder.mkdir(exist_ok=True)
    cv2.imwrite(str(folder / name), np.full((size, size, 3), 128, np.uint8))
    return folder


WRITING_COMMANDS = ("annotate import", "weaklabels build", "weaklabels compare", "export coco", "sample", "train",
                    "calibrate", "predict", "eval", "crf refine", "crf tune")


@pytest.mark.parametrize("problem", [errno.ENOSPC, errno.EROFS, errno.EACCES], ids=["full", "read-only", "no-permission"])
@pytest.mark.parametrize("command", WRITING_COMMANDS)
def test_a_full_or_read_only_output_ends_in_one_line(command: str, problem: int, shared_inputs, trained_run: Path,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file and folder cgc writes starts as a temporary one beside its place: refuse those as the file
    system would (tests run as root, for whom no folder is read-only). Every command that writes ends in one line."""
    import tempfile

    sample_dir, boxes, labels = shared_inputs
    inputs = Inputs(sample_dir, boxes, labels, tmp_path)
    one_picture_results(tmp_path, images_json=True)
    pictures = a_picture(tmp_path / "pictures")
    predictions = ["--predictions", str(tmp_path), "--images", str(pictures)]
    args = {
        "annotate import": ["annotate", "import", "--from-export", str(sample_dir / "labelstudio_export.json"),
                            "--out", str(tmp_path / "boxes.json")],
        "weaklabels build": build(inputs),
        "weaklabels compare": ["weaklabels", "compare", "--labels", str(labels[0]), "--truth", str(labels[0]),
                               "--json", str(tmp_path / "q.json")],
        "export coco": ["export", "coco", "--format", "ilso", "--root", str(sample_dir), "--out", str(tmp_path / "t.json")],
        "sample": ["sample", "--out", str(tmp_path / "s"), "--images", "1"],
        "train": train(inputs),
        "calibrate": ["calibrate", "--checkpoint", str(trained_run), "--images", str(labels[1]), "--data",
                      str(labels[0]), "--device", "cpu"],
        "predict": predict(inputs, "run", tmp_path / "pred"),
        "eval": ["eval", "--predictions", str(tmp_path / "results.json"), "--data", str(tmp_path / "truth.json"),
                 "--out", str(tmp_path / "m.json")],
        "crf refine": ["crf", "refine", *predictions, "--out", str(tmp_path / "refined"), "--workers", "1"],
        "crf tune": ["crf", "tune", *predictions, "--gt", str(tmp_path / "truth.json"), "--out",
                     str(tmp_path / "tune.json"), "--workers", "1", "--w1-range", "4", "--theta-alpha-range", "70",
                     "--theta-beta-range", "13"],
    }[command]
    checkpoint_before = sorted((path.name, path.read_bytes()) for path in (trained_run / "checkpoints").iterdir())

    def refuse(*_args, dir=None, **_kwargs):
        raise OSError(problem, os.strerror(problem), str(dir))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    result = CliRunner().invoke(cgc, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and "cannot write or read here" in lines[0], result.output
    assert sorted((path.name, path.read_bytes()) for path in (trained_run / "checkpoints").iterdir()) == checkpoint_before


def test_a_watched_for_stop_is_one_line_and_a_crash_keeps_its_traceback() -> None:
    import click

    from cgc.cli import reports_input_errors
    from cgc.errors import RunStopped

    @click.command()
    @click.option("--crash", is_flag=True)
    @reports_input_errors
    def run(crash: bool) -> None:
        raise RuntimeError("a worker died") if crash else RunStopped("loss is not finite at iteration 2")

    stopped = CliRunner().invoke(run, [])
    assert stopped.exit_code == 1 and stopped.output == "Error: loss is not finite at iteration 2\n"
    crashed = CliRunner().invoke(run, ["--crash"])
    assert isinstance(crashed.exception, RuntimeError) and crashed.output == ""
