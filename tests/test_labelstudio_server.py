"""cgc against a real Label Studio server: setup -> five annotators -> import -> weak labels -> push.

The server (see `labelstudio_server.py`) starts once per session, ~60 s. Without it installed the
server tests skip locally and FAIL in CI (CI=true): `make test` installs it first. The retry and
error-message tests at the top need no server.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from cgc.annotate.labelstudio_client import (
    LabelStudioError,
    RetryPolicy,
    RetryTransport,
    as_plain,
    connect_label_studio,
    explain_failure,
)
from cgc.cli import cgc
from helpers import huge_png, truncated
from labelstudio_server import free_port, label_studio_binary, running_label_studio

SECRET = "0123456789abcdef0123456789abcdef01234567"
NO_WAIT = RetryPolicy(attempts=4, base_delay=0.0, max_retry_after=0.0)
server_test = pytest.mark.slow


def run_cgc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The real command line in a child process, as a user runs it (no CliRunner exception capture)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    return subprocess.run([sys.executable, "-m", "cgc.cli", *args], capture_output=True, text=True,
                          env={**clean, **(env or {})}, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *must_contain: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert SECRET not in result.stderr + result.stdout
    for text in must_contain:
        assert text in lines[0], lines[0]


# -- retries and messages, no server ------------------------------------------------------------


def scripted_transport(answers: list) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A fake server answering from a script: an int status, or an exception to raise."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return httpx.Response(status, headers=headers, json={"id": 1, "email": "admin@example.com"})

    return httpx.MockTransport(handler), seen


def test_retry_transport_retries_transient_statuses_with_backoff() -> None:
    mock, seen = scripted_transport([503, (429, {"Retry-After": "3"}), 200])
    waits: list[float] = []
    transport = RetryTransport(mock, RetryPolicy(attempts=4, base_delay=0.5, jitter=0.0), sleep=waits.append)
    with httpx.Client(transport=transport) as client:
        assert client.get("http://ls.test/api/projects").status_code == 200
    assert len(seen) == 3
    assert waits == [0.5, 3.0]  # exponential backoff, then the server's Retry-After


def test_retry_transport_retries_refused_connections_then_gives_up() -> None:
    mock, seen = scripted_transport([httpx.ConnectError("refused")] * 4)
    transport = RetryTransport(mock, RetryPolicy(attempts=4, base_delay=1.0, jitter=0.0), sleep=lambda s: None)
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError):
        client.get("http://ls.test/api/projects")
    assert len(seen) == 4 and transport.retries_done == 3


def test_retry_transport_does_not_repeat_a_post_after_a_500() -> None:
    """A POST that failed with 500 may have created tasks already: do not send it twice."""
    mock, seen = scripted_transport([500, 200])
    transport = RetryTransport(mock, NO_WAIT, sleep=lambda s: None)
    with httpx.Client(transport=transport) as client:
        assert client.post("http://ls.test/api/projects/1/import", files={"a.jpg": b"x"}).status_code == 500
    assert len(seen) == 1


def test_retry_transport_resends_a_multipart_post_after_a_503() -> None:
    mock, seen = scripted_transport([503, 201])
    transport = RetryTransport(mock, NO_WAIT, sleep=lambda s: None)
    with httpx.Client(transport=transport) as client:
        answer = client.post("http://ls.test/api/projects/1/import", files={"a.jpg": ("a.jpg", b"jpeg-bytes")})
    assert answer.status_code == 201 and len(seen) == 2
    assert b"jpeg-bytes" in seen[1].content


def test_connect_retries_through_the_sdk_and_reports_a_refused_key_without_it() -> None:
    mock, seen = scripted_transport([502, 200])
    connection = connect_label_studio("http://ls.test", SECRET, NO_WAIT, transport=mock)
    assert len(seen) == 2 and connection.transport.retries_done == 1
    assert seen[-1].headers["Authorization"] == f"Token {SECRET}"

    mock, _ = scripted_transport([401])
    with pytest.raises(LabelStudioError) as caught:
        connect_label_studio("http://ls.test", SECRET, NO_WAIT, transport=mock)
    assert "refused the API key" in str(caught.value) and SECRET not in str(caught.value)


def test_image_upload_sends_the_legacy_key_and_is_retried() -> None:
    """The upload is the one request the SDK does not wrap: same key, same retries."""
    mock, seen = scripted_transport([200, 503, 201])
    connection = connect_label_studio("http://ls.test", SECRET, NO_WAIT, transport=mock)
    connection.post_files("api/projects/3/import", {"a.jpg": ("a.jpg", b"jpeg-bytes", "image/jpeg")}, "uploading")
    upload = seen[-1]
    assert upload.url == "http://ls.test/api/projects/3/import" and len(seen) == 3
    assert upload.headers["Authorization"] == f"Token {SECRET}" and b"jpeg-bytes" in upload.content


def test_image_upload_exchanges_a_personal_access_token_for_a_bearer_token() -> None:
    import jwt

    refresh = jwt.encode({"token_type": "refresh", "exp": 4102444800}, "k" * 32, algorithm="HS256")
    access = jwt.encode({"token_type": "access", "exp": 4102444800}, "k" * 32, algorithm="HS256")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/token/refresh/":
            assert json.loads(request.content)["refresh"] == refresh
            return httpx.Response(200, json={"access": access})
        if request.url.path.endswith("/import"):
            return httpx.Response(201, json={"task_count": 1})
        return httpx.Response(404, json={"detail": "Not found."})

    connection = connect_label_studio("http://ls.test", refresh, NO_WAIT, transport=httpx.MockTransport(handler),
                                      check=False)
    answer = connection.post_files("api/projects/3/import", {"a.jpg": ("a.jpg", b"x")}, "uploading")
    assert answer == {"task_count": 1}
    assert seen[-1].headers["Authorization"] == f"Bearer {access}"


def test_labelling_config_round_trips_through_the_sdk() -> None:
    from cgc.annotate.labelstudio_config import ControlTag, control_tags, salient_label_config

    assert control_tags(salient_label_config("none")) == {"rectangle": ControlTag("label", "image", "salient")}
    assert control_tags(salient_label_config("brush"))["brush"] == ControlTag("mask", "image", "salient")
    assert control_tags(salient_label_config("polygon"))["polygon"] == ControlTag("mask", "image", "salient")
    two = ('<View><Image name="img" value="$image"/><RectangleLabels name="first" toName="img">'
           '<Label value="thing"/></RectangleLabels><RectangleLabels name="second" toName="img"/></View>')
    assert control_tags(two) == {"rectangle": ControlTag("first", "img", "thing")}
    with pytest.raises(LabelStudioError, match="cannot read the project's labelling config"):
        control_tags("<View><Image")


def test_a_prediction_without_a_box_takes_its_mask_s_box() -> None:
    from cgc.annotate.labelstudio_config import ControlTag
    from cgc.annotate.labelstudio_push import prediction_for_image
    from cgc.coco import encode_mask

    mask = np.zeros((30, 40), np.uint8)
    mask[5:15, 10:30] = 1
    image = {"id": 1, "width": 40, "height": 30}
    instance = {"id": 7, "segmentation": encode_mask(mask), "score": 0.9}
    tags = {"rectangle": ControlTag("label", "image", "salient"), "brush": ControlTag("mask", "image", "salient")}
    regions, score = prediction_for_image(image, [instance], tags, "brush", "salient")
    box, brush = regions
    assert score == 0.9 and brush["type"] == "brushlabels"
    assert (box["value"]["x"], box["value"]["y"]) == (25.0, 5 / 30 * 100)
    assert (box["value"]["width"], box["value"]["height"]) == (50.0, 10 / 30 * 100)
    boxes_only, _ = prediction_for_image(image, [instance], tags, "none", "salient")
    assert [region["type"] for region in boxes_only] == ["rectanglelabels"]
    assert boxes_only[0]["value"] == box["value"]


def test_failure_messages_are_one_line_and_name_the_problem() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:9/api")
    refused = explain_failure(httpx.ConnectError("[Errno 111] Connection refused", request=request), "http://h", "x")
    assert refused == "cannot connect to Label Studio at http://h: connection refused (is the server running?)"

    class Api404(Exception):
        status_code, body = 404, {"detail": "Not found."}

    assert "project 7 not found" in explain_failure(Api404(), "http://h", "x", project=7)
    assert "base URL" in explain_failure(Api404(), "http://h", "x")


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    result = CliRunner().invoke(cgc, ["annotate", "import", "--project", "1", "--out", "boxes.json"])
    assert result.exit_code == 1 and "LABEL_STUDIO_URL" in result.output
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:9")
    result = CliRunner().invoke(cgc, ["annotate", "import", "--project", "1", "--out", "boxes.json"])
    assert result.exit_code == 1 and "LABEL_STUDIO_API_KEY" in result.output


@pytest.mark.parametrize("key", ["abc\ndef0123456789", "abc def0123456789", 'abc"def0123456789', "abcé0123456789"])
def test_a_key_with_characters_no_key_has_is_refused_without_showing_it(key: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cgc, ["annotate", "import", "--url", "http://127.0.0.1:9", "--api-key", key,
                                      "--project", "1", "--out", str(tmp_path / "boxes.json")])
    assert result.exit_code == 1 and "holds characters no key has" in result.output
    assert "0123456789" not in result.output and "abc" not in result.output


def test_a_password_in_the_url_is_never_repeated(tmp_path: Path) -> None:
    port = free_port()
    for url in (f"http://admin:hunter2@127.0.0.1:{port}", "ftp://admin:hunter2@ls.test"):
        result = CliRunner().invoke(cgc, ["annotate", "import", "--url", url, "--api-key", SECRET, "--project", "1",
                                          "--out", str(tmp_path / "boxes.json")])
        assert result.exit_code == 1 and "hunter2" not in result.output and "admin:***@" in result.output, result.output
    assert explain_failure(ValueError(), "http://u:pw@h", "x") == ("http://u:***@h did not answer like a Label Studio "
                                                                    "API while x: is this the server's base URL?")


def test_dead_server_gives_a_one_line_error() -> None:
    port = free_port()  # nothing listens there once the probe socket is closed
    result = run_cgc("annotate", "import", "--url", f"http://127.0.0.1:{port}", "--api-key", SECRET,
                     "--project", "1", "--out", "unused.json")
    assert_one_line_error(result, "connection refused")


# -- against the real server ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory):
    binary = label_studio_binary()
    if not binary.exists():
        message = (f"Label Studio server not installed at {binary}: run `make labelstudio` "
                   "(or set CGC_LABEL_STUDIO_BIN)")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    with running_label_studio(tmp_path_factory.mktemp("labelstudio")) as server:
        yield server


@pytest.fixture(scope="session")
def admin(label_studio):
    return connect_label_studio(label_studio.url, label_studio.api_key)


def server_args(label_studio, *args: str) -> list[str]:
    return [*args, "--url", label_studio.url, "--api-key", label_studio.api_key]


def annotate_as_the_sample_annotators(admin, project_id: int, sample_dir: Path, users: dict[int, int],
                                      short_task: int | None = None) -> list[dict]:
    """Each task gets the sample's five annotators' boxes, each submitted as that user (three on `short_task`)."""
    sample_tasks = {Path(t["data"]["image"]).name.split("-", 1)[1]: t
                    for t in json.loads((sample_dir / "labelstudio_export.json").read_text())}
    submitted = []
    for task in sorted((as_plain(t) for t in admin.client.tasks.list(project=project_id)), key=lambda t: t["id"]):
        name = Path(task["data"]["image"]).name.split("-", 1)[1]
        annotations = sample_tasks[name]["annotations"]
        if task["id"] == short_task:
            annotations = annotations[:3]
        for annotation in annotations:
            admin.client.annotations.create(id=task["id"], result=annotation["result"],
                                            completed_by=users[annotation["completed_by"]])
        submitted.append({**sample_tasks[name], "annotations": annotations})
    return submitted


@pytest.fixture(scope="session")
def annotated_project(label_studio, admin, sample_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Setup (twice) on the sample images, then the sample's five annotators' boxes, each as a real user.

    Two annotators skip the first task, so it has 3 of 5 annotations.
    """
    runner = CliRunner()
    args = server_args(label_studio, "annotate", "setup", "--images", str(sample_dir / "imgs"),
                       "--title", "Salient round trip", "--mask-tool", "brush")
    first = runner.invoke(cgc, args)
    assert first.exit_code == 0, first.output
    assert "Created project" in first.output and "Uploaded 12 images" in first.output
    again = runner.invoke(cgc, args)
    assert again.exit_code == 0, again.output
    assert "Reusing project" in again.output and "Uploaded 0 images; 12 were already there" in again.output
    project_id = int(first.output.split("project ", 1)[1].split()[0])
    project = as_plain(admin.client.projects.get(id=project_id))
    assert project["maximum_annotations"] == 5 and "one box per salient instance" in project["expert_instruction"]

    users = {}
    for number in range(1, 6):
        user = as_plain(admin.client.users.create(username=f"annotator{number}", email=f"annotator{number}@example.com"))
        users[number] = user["id"]
    tasks = sorted((as_plain(t) for t in admin.client.tasks.list(project=project_id)), key=lambda t: t["id"])
    assert len(tasks) == 12
    short_task = tasks[0]["id"]
    submitted = annotate_as_the_sample_annotators(admin, project_id, sample_dir, users, short_task)
    # The same boxes as a local export (annotator numbers as in the sample), for the expected consensus.
    expected_export = tmp_path_factory.mktemp("expected") / "sample_export.json"
    expected_export.write_text(json.dumps(submitted))
    return {"id": project_id, "short_task": short_task, "expected_export": expected_export, "users": users}


@server_test
def test_live_import_averages_five_annotators_and_reports_short_tasks(label_studio, annotated_project, tmp_path):
    out = tmp_path / "boxes.json"
    result = run_cgc("annotate", "import", *server_args(label_studio, "--project", str(annotated_project["id"])),
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert label_studio.api_key not in result.stdout + result.stderr
    assert "Read 12 tasks (labelstudio-api), 58 annotations" in result.stdout
    assert f"1 tasks have fewer than 5 annotators: task {annotated_project['short_task']} (3)" in result.stderr
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["counts"]["tasks_with_too_few_annotators"] == 1
    # boxes.json names annotators by user id, as Label Studio does, and says whose email each is.
    boxes = json.loads(out.read_text())
    emails = boxes["info"]["annotator_emails"]
    assert emails == {str(user_id): f"annotator{number}@example.com"
                      for number, user_id in annotated_project["users"].items()}
    assert {a for image in boxes["images"] for a in image["annotators"]} == set(emails)

    expected_out = tmp_path / "expected.json"
    CliRunner().invoke(cgc, ["annotate", "import", "--from-export", str(annotated_project["expected_export"]),
                             "--out", str(expected_out)], catch_exceptions=False)
    live, expected = json.loads(out.read_text()), json.loads(expected_out.read_text())
    boxes = {}
    for dataset in (live, expected):
        names = {image["id"]: image["file_name"] for image in dataset["images"]}
        boxes[id(dataset)] = sorted((names[a["image_id"]], a["bbox"], a["num_annotators"]) for a in dataset["annotations"])
    assert len(boxes[id(live)]) >= 12
    for (name, bbox, votes), (name2, bbox2, votes2) in zip(boxes[id(live)], boxes[id(expected)], strict=True):
        assert (name, votes) == (name2, votes2)
        np.testing.assert_allclose(bbox, bbox2, atol=1e-9)


@server_test
def test_live_import_and_export_file_give_identical_boxes(label_studio, admin, annotated_project, tmp_path):
    project_id = annotated_project["id"]
    export = json.loads(b"".join(admin.client.projects.exports.download_sync(project_id, export_type="JSON")))
    export_path = tmp_path / "export.json"
    export_path.write_text(json.dumps(export))
    live_out, file_out = tmp_path / "live.json", tmp_path / "file.json"
    live = CliRunner().invoke(cgc, ["annotate", "import", *server_args(label_studio, "--project", str(project_id)),
                                    "--out", str(live_out)])
    from_file = CliRunner().invoke(cgc, ["annotate", "import", "--from-export", str(export_path), "--out", str(file_out)])
    assert live.exit_code == 0 and from_file.exit_code == 0, live.output + from_file.output
    live_boxes, file_boxes = json.loads(live_out.read_text()), json.loads(file_out.read_text())
    assert live_boxes["info"].pop("annotator_emails")  # only the server knows them
    assert live_boxes == file_boxes

    # Page by page: small pages give the same tasks as one big one.
    from cgc.annotate.labelstudio_pull import fetch_project_tasks

    paged = fetch_project_tasks(admin, project_id, page_size=5)
    assert sorted(t["id"] for t in paged) == sorted(t["id"] for t in fetch_project_tasks(admin, project_id))
    assert len(paged) == 12


@server_test
def test_round_trip_weaklabels_push_and_read_back(label_studio, admin, annotated_project, sample_dir, tmp_path):
    from cgc.coco import decode_mask
    from label_studio_sdk.converter.brush import decode_rle

    project_id = annotated_project["id"]
    runner = CliRunner()
    boxes = tmp_path / "boxes.json"
    assert runner.invoke(cgc, ["annotate", "import", *server_args(label_studio, "--project", str(project_id)),
                               "--out", str(boxes)]).exit_code == 0
    built = runner.invoke(cgc, ["weaklabels", "build", "--images", str(sample_dir / "imgs"), "--masks",
                                str(sample_dir / "masks"), "--boxes", str(boxes), "--out", str(tmp_path / "weak"),
                                "--workers", "1"])
    assert built.exit_code == 0, built.output
    weak = json.loads((tmp_path / "weak" / "annotations.json").read_text())

    push = server_args(label_studio, "annotate", "push", "--project", str(project_id), "--from", str(tmp_path / "weak"))
    for attempt in range(2):  # the second push replaces the first instead of stacking
        result = runner.invoke(cgc, push)
        assert result.exit_code == 0, result.output
        assert "Pushed weaklabels as 'cgc-weaklabels'" in result.output and "masks: brush" in result.output
    assert f"replaced {len({a['image_id'] for a in weak['annotations']})} older" in result.output
    consensus = runner.invoke(cgc, server_args(label_studio, "annotate", "push", "--project", str(project_id),
                                               "--from", str(boxes)))
    assert consensus.exit_code == 0 and "Pushed boxes as 'cgc-boxes'" in consensus.output

    tasks = {t["id"]: t for t in (as_plain(t) for t in admin.client.tasks.list(project=project_id))}
    names = {image["id"]: image for image in weak["images"]}
    by_file = {Path(t["data"]["image"]).name.split("-", 1)[1]: t for t in tasks.values()}
    checked = 0
    for annotation in weak["annotations"]:
        image = names[annotation["image_id"]]
        task = by_file[image["file_name"]]
        versions = sorted(p["model_version"] for p in task["predictions"])
        assert versions == ["cgc-boxes", "cgc-weaklabels"]
        prediction = next(p for p in task["predictions"] if p["model_version"] == "cgc-weaklabels")
        region = f"cgc{annotation['id']}"
        rect = next(r for r in prediction["result"] if r["id"] == f"{region}-box")
        x, y, w, h = annotation["bbox"]
        assert rect["value"]["x"] == pytest.approx(x / image["width"] * 100)
        assert rect["value"]["width"] == pytest.approx(w / image["width"] * 100)
        brush = next(r for r in prediction["result"] if r["id"] == f"{region}-mask")
        pushed = decode_rle(brush["value"]["rle"]).reshape(image["height"], image["width"], 4)[:, :, 3] > 0
        assert np.array_equal(pushed, decode_mask(annotation["segmentation"], image["height"], image["width"]))
        checked += 1
    assert checked == len(weak["annotations"]) > 0

    # A reviewer accepts one prediction's box: the next import sees one more annotation.
    task = by_file[names[weak["annotations"][0]["image_id"]]["file_name"]]
    prediction = next(p for p in task["predictions"] if p["model_version"] == "cgc-weaklabels")
    admin.client.annotations.create(id=task["id"], result=[r for r in prediction["result"]
                                                           if r["type"] == "rectanglelabels"])
    again = runner.invoke(cgc, ["annotate", "import", *server_args(label_studio, "--project", str(project_id)),
                                "--out", str(tmp_path / "after_review.json")])
    assert "59 annotations" in again.output


@server_test
def test_personal_access_token_and_environment_credentials(label_studio, admin, annotated_project, sample_dir,
                                                           tmp_path):
    token = as_plain(admin.client.tokens.create())["token"]  # a JWT refresh token, as real deployments use
    result = run_cgc("annotate", "import", "--project", str(annotated_project["id"]), "--out",
                     str(tmp_path / "boxes.json"),
                     env={"LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": token})
    assert result.returncode == 0, result.stderr
    assert token not in result.stdout + result.stderr

    # Uploading images, the request the SDK does not wrap, works with the same token.
    images = tmp_path / "pat_images"
    images.mkdir()
    for picture in sorted((sample_dir / "imgs").iterdir())[:2]:
        (images / picture.name).write_bytes(picture.read_bytes())
    setup = run_cgc("annotate", "setup", "--images", str(images), "--title", "Uploaded with a token",
                    env={"LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": token})
    assert setup.returncode == 0 and "Uploaded 2 images" in setup.stdout, setup.stderr
    assert token not in setup.stdout + setup.stderr


@server_test
def test_wrong_key_and_missing_project_give_one_line_errors(label_studio, tmp_path) -> None:
    wrong_key = run_cgc("annotate", "import", "--url", label_studio.url, "--api-key", SECRET, "--project", "1",
                        "--out", "unused.json")
    assert_one_line_error(wrong_key, "refused the API key", "HTTP 401")
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 4}],
                                 "annotations": []}))
    missing = run_cgc("annotate", "push", *server_args(label_studio, "--project", "999"), "--from", str(boxes))
    assert missing.returncode == 1 and "project 999 not found" in missing.stderr
    assert "Traceback" not in missing.stderr and label_studio.api_key not in missing.stderr


@server_test
def test_setup_leaves_out_pictures_it_cannot_use(label_studio, sample_dir, tmp_path) -> None:
    """Checked before anything is sent: no task shows a broken picture, and the rest is uploaded."""
    good = sorted((sample_dir / "imgs").glob("*.jpg"))[0]
    images = tmp_path / "mixed"
    images.mkdir()
    (images / good.name).write_bytes(good.read_bytes())
    (images / "cut.jpg").write_bytes(truncated(good))
    (images / "notes.png").write_bytes(b"not a picture")
    (images / "huge.png").write_bytes(huge_png())
    result = run_cgc(*server_args(label_studio, "annotate", "setup", "--images", str(images), "--title", "Mixed"))
    assert result.returncode == 0 and "Uploaded 1 images" in result.stdout, result.stderr
    left_out = sorted(line for line in result.stderr.splitlines() if line.startswith("Warning: left out"))
    assert len(left_out) == 3, result.stderr
    for line, name, reason in zip(left_out, ("cut.jpg", "huge.png", "notes.png"),
                                  ("truncated JPEG", "more than the limit", "cannot read the picture's header")):
        assert name in line and reason in line, line

    (images / good.name).unlink()
    only_bad = run_cgc(*server_args(label_studio, "annotate", "setup", "--images", str(images), "--title", "Mixed"))
    assert_one_line_error(only_bad, "none of the pictures can be used")


@server_test
@pytest.mark.parametrize("problem", [errno.ENOSPC, errno.EROFS, errno.EACCES], ids=["full", "read-only", "no-permission"])
def test_import_from_the_server_into_a_full_or_read_only_folder_ends_in_one_line(
        problem: int, label_studio, annotated_project, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every output starts as a temporary file beside its place: refuse it as the file system would."""
    import tempfile

    def refuse(*_args, dir=None, **_kwargs):
        raise OSError(problem, os.strerror(problem), str(dir))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    out = tmp_path / "boxes.json"
    result = CliRunner().invoke(cgc, server_args(label_studio, "annotate", "import", "--project",
                                                 str(annotated_project["id"]), "--out", str(out)))
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and "cannot write or read here" in lines[0], result.output
    assert not out.exists() and label_studio.api_key not in result.output


@server_test
def test_labelstudio_loop_example(label_studio, admin, annotated_project, sample_dir, tmp_path) -> None:
    """examples/labelstudio_loop.sh: setup, people annotate (here the sample's annotators), then train and push."""
    example = Path(__file__).resolve().parents[1] / "examples" / "labelstudio_loop.sh"
    environment = {"LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": label_studio.api_key,
                   "CGC": f"{sys.executable} -m cgc.cli", "ITERATIONS": "2", "PATH": os.environ["PATH"]}

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(["bash", str(example), *args], capture_output=True, text=True, timeout=900,
                              env={**os.environ, **environment})
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done

    setup = run("setup", str(sample_dir / "imgs"), "Loop example")
    project_id = int(setup.stdout.split("Created project ", 1)[1].split()[0])
    annotate_as_the_sample_annotators(admin, project_id, sample_dir, annotated_project["users"])
    out = tmp_path / "loop"
    trained = run("train", str(project_id), str(sample_dir / "imgs"), str(sample_dir / "masks"), str(out))
    assert "Done: reviewers see the predictions" in trained.stdout
    versions = {prediction["model_version"] for task in admin.client.tasks.list(project=project_id, fields="all")
                for prediction in as_plain(task)["predictions"]}
    assert {"cgc-weaklabels", "cgcnet"} <= versions


@server_test
def test_serve_is_the_projects_ml_backend(label_studio, admin, sample_dir, tiny_labels, tmp_path) -> None:
    """Label Studio connects to `cgc serve` (health, setup) and stores its predictions for a project's tasks."""
    import time

    from cgc.training.engine import train
    from helpers import short_run, tiny_config

    run = tmp_path / "run"
    train(tiny_config(tiny_labels, run, **short_run(1)), progress=False)
    images, masks = tmp_path / "served", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for picture in sorted((sample_dir / "imgs").iterdir())[:2]:
        (images / picture.name).write_bytes(picture.read_bytes())
        mask = sample_dir / "masks" / f"{picture.stem}.png"
        (masks / mask.name).write_bytes(mask.read_bytes())
    setup = run_cgc(*server_args(label_studio, "annotate", "setup", "--images", str(images), "--title", "Served",
                                 "--mask-tool", "brush"))
    assert setup.returncode == 0, setup.stderr
    project_id = int(setup.stdout.split("project ", 1)[1].split()[0])

    # The operator names the server (the key comes from Label Studio's /setup) and guards the model server with a
    # password, which `annotate setup --connect-model` hands to Label Studio from the same environment variable.
    port, auth = free_port(), ("studio", "s3cret")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    guarded = {"CGC_SERVE_AUTH": ":".join(auth)}
    serving = subprocess.Popen([sys.executable, "-m", "cgc.cli", "serve", "--checkpoint", str(run), "--port", str(port),
                                "--device", "cpu", "--score-thr", "0", "--model-version", "cgc-live",
                                "--url", label_studio.url,
                                "--train-images", str(images), "--train-masks", str(masks), "--train-out",
                                str(tmp_path / "rounds"), "--train-every", "2", "--train-iterations", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean | guarded)
    try:
        for _ in range(120):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", auth=auth).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 401
        connect = [*server_args(label_studio, "annotate", "setup", "--images", str(images), "--title", "Served"),
                   "--connect-model", f"http://127.0.0.1:{port}"]
        first, again = run_cgc(*connect, env=guarded), run_cgc(*connect, env=guarded)
        assert "Model at http://127.0.0.1:" in first.stdout and ": connected." in first.stdout, first.stderr
        assert ": already connected; credentials updated." in again.stdout, again.stderr
        admin.client.actions.create(id="retrieve_tasks_predictions", project=project_id,
                                    selected_items={"all": True, "excluded": []})
        tasks = [as_plain(t) for t in admin.client.tasks.list(project=project_id, fields="all")]
        predictions = {t["id"]: p for t in tasks for p in t["predictions"] if p["model_version"] == "cgc-live"}
        assert len(predictions) == 2, tasks
        # They decode to the masks the model gives for the same pictures.
        from label_studio_sdk.converter.brush import decode_rle

        from cgc.annotate.import_parser import labelstudio_image_file_name
        from cgc.api import load_model

        model = load_model(run, "cpu", score_threshold=0.0)
        tasks.sort(key=lambda t: t["id"])  # Label Studio sends them in this order, in one request: one batch
        batch = model.predict_batch([images / labelstudio_image_file_name(t["data"]["image"]) for t in tasks])
        for task, prediction in zip(tasks, batch):
            regions = predictions[task["id"]]["result"]
            assert {r["type"] for r in regions} == {"rectanglelabels", "brushlabels"}
            expected = prediction.masks
            brushes = sorted((r for r in regions if r["type"] == "brushlabels"), key=lambda r: int(r["id"][3:-5]))
            assert len(brushes) == int(expected.any(axis=(1, 2)).sum())
            for region, mask in zip(brushes, expected):
                height, width = region["original_height"], region["original_width"]
                decoded = decode_rle(region["value"]["rle"]).reshape(height, width, 4)[:, :, 3] > 0
                assert np.array_equal(decoded, mask)

        # Training from Label Studio: two annotations reach the model's webhook, which starts a round
        # (import, weak labels, fine-tuning); its model is then served under a new version.
        boxes = {Path(t["data"]["image"]).name.split("-", 1)[1]: t["annotations"][0]["result"]
                 for t in json.loads((sample_dir / "labelstudio_export.json").read_text())}
        for task in tasks:
            admin.client.annotations.create(id=task["id"], result=boxes[labelstudio_image_file_name(task["data"]["image"])])
        for _ in range(240):
            health = httpx.get(f"http://127.0.0.1:{port}/health", auth=auth).json()
            if health["training"].get("round") == 1 and health["training"]["state"] != "training":
                break
            time.sleep(0.5)
        assert health["training"] == {"state": "idle", "round": 1, "model_version": "cgc-live-ft1",
                                      "new_annotations": 0}, health
        assert health["model_version"] == "cgc-live-ft1"
        round_folder = tmp_path / "rounds" / "round-001"
        consensus = json.loads((round_folder / "boxes.json").read_text())
        assert len(consensus["images"]) == 2 and consensus["annotations"]
        assert (round_folder / "weaklabels" / "annotations.json").is_file()
        assert load_model(round_folder / "run", "cpu").loaded.config.run.init_from == str(load_model(run).loaded.checkpoint)
        admin.client.actions.create(id="retrieve_tasks_predictions", project=project_id,
                                    selected_items={"all": True, "excluded": []})
        tasks = [as_plain(t) for t in admin.client.tasks.list(project=project_id, fields="all")]
        assert all(any(p["model_version"] == "cgc-live-ft1" for p in t["predictions"]) for t in tasks), tasks
    finally:
        serving.terminate()
        _, log = serving.communicate(timeout=30)
    assert "POST /setup -> 200" in log and "POST /predict -> 200" in log, log
    assert "POST /webhook -> 200" in log and "round 1 done" in log, log


@server_test
def test_mask_tool_reaches_a_reused_project(label_studio, admin, sample_dir, tmp_path) -> None:
    """`setup --mask-tool` on a project that exists adds the tool to a config cgc made, and says how otherwise."""
    from cgc.annotate.labelstudio_config import control_tags

    images = tmp_path / "one"
    images.mkdir()
    picture = sorted((sample_dir / "imgs").iterdir())[0]
    (images / picture.name).write_bytes(picture.read_bytes())
    args = server_args(label_studio, "annotate", "setup", "--images", str(images), "--title", "Tool later")
    assert run_cgc(*args).returncode == 0
    added = run_cgc(*args, "--mask-tool", "polygon")
    assert added.returncode == 0 and "Added the polygon tool" in added.stdout, added.stderr
    project_id = int(added.stdout.split("project ", 1)[1].split()[0])
    assert "polygon" in control_tags(as_plain(admin.client.projects.get(id=project_id))["label_config"])
    assert "Added" not in run_cgc(*args, "--mask-tool", "polygon").stdout

    admin.client.projects.create(title="Their own config", label_config=(
        '<View><Image name="pic" value="$image"/><RectangleLabels name="r" toName="pic">'
        '<Label value="thing"/></RectangleLabels></View>'))
    theirs = run_cgc(*server_args(label_studio, "annotate", "setup", "--images", str(images), "--title",
                                  "Their own config", "--mask-tool", "brush"))
    assert_one_line_error(theirs, "not made by cgc", "Settings > Labeling Interface")


def readme_quick_start() -> tuple[list[str], str]:
    """The README's quick start: the command lines of its bash block (comments dropped), and its Python block."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    python = section.split("```python\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")], python


@server_test
def test_readme_quick_start_runs_as_written(label_studio, admin, annotated_project, sample_dir, tmp_path) -> None:
    """Every command of the README's quick start, in its order, on the sample pictures and a live server: only the
    project number, the credentials and the training length are this test's own."""
    import shlex

    for name, source in (("pictures", "imgs"), ("masks", "masks"), ("new-pictures", "imgs")):
        (tmp_path / name).symlink_to(sample_dir / source)
    environment = {**os.environ, "LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": label_studio.api_key}
    lines, python = readme_quick_start()
    assert [line.split()[:3] for line in lines if line.startswith("cgc")] == [
        ["cgc", "annotate", "setup"], ["cgc", "annotate", "import"], ["cgc", "weaklabels", "build"],
        ["cgc", "train", "--preset"], ["cgc", "calibrate", "--checkpoint"], ["cgc", "predict", "--checkpoint"]]
    project_id = None
    for line in lines:
        words = shlex.split(line)
        if words[0] == "export":  # the credentials: the live server's instead
            assert {word.split("=")[0] for word in words[1:]} == {"LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"}
            continue
        assert words[0] == "cgc", line
        if words[1:3] == ["annotate", "import"]:
            words[words.index("--project") + 1] = str(project_id)
        if words[1] == "train":
            words += ["--iterations", "2"]
        done = subprocess.run([sys.executable, "-m", "cgc.cli", *words[1:]], cwd=tmp_path, env=environment,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, line + "\n" + done.stdout[-2000:] + done.stderr[-3000:]
        if words[1:3] == ["annotate", "setup"]:  # the people draw their boxes: here the sample's five annotators
            project_id = int(done.stdout.split("Created project ", 1)[1].split()[0])
            annotate_as_the_sample_annotators(admin, project_id, sample_dir, annotated_project["users"])
    assert len(json.loads((tmp_path / "boxes.json").read_text())["annotations"]) > 0
    assert (tmp_path / "weak-overlays").is_dir() and (tmp_path / "run" / "config.json").is_file()
    assert len(list((tmp_path / "predictions" / "masks").iterdir())) == len(list((sample_dir / "imgs").iterdir()))
    # the Python API block, on the same folders: an export file, and true masks of some pictures
    (tmp_path / "export.json").symlink_to(sample_dir / "labelstudio_export.json")
    (tmp_path / "test").symlink_to(sample_dir / "imgs")
    exported = subprocess.run([sys.executable, "-m", "cgc.cli", "export", "coco", "--format", "ilso", "--root",
                               str(sample_dir), "--out", str(tmp_path / "truth.json")], capture_output=True, text=True)
    assert exported.returncode == 0, exported.stderr
    assert 'solver={"iterations": 300}' in python
    script = python.replace('solver={"iterations": 300}', 'solver={"iterations": 2}').replace('"run"', '"run-api"')  # run/: the CLI's
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 0 <= float(done.stdout.split()[-1]) <= 100  # the COCO mask AP it prints
