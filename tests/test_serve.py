"""`cgc serve`, the Label Studio ML backend: its routes in-process, with the task pictures on a stand-in server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from cgc.api import load_model
from cgc.errors import InputError
from cgc.inference import resolve_checkpoint
from cgc.serve.app import create_app
from cgc.serve.backend import SalientInstanceBackend
from cgc.serve.task_images import TaskImages
from helpers import tiny_config

KEY = "0123456789abcdef0123456789abcdef01234567"
BRUSH_CONFIG = ('<View><Image name="img" value="$picture"/><RectangleLabels name="box" toName="img">'
                '<Label value="salient"/></RectangleLabels><BrushLabels name="mask" toName="img">'
                '<Label value="salient"/></BrushLabels></View>')
POLYGON_CONFIG = BRUSH_CONFIG.replace("BrushLabels", "PolygonLabels")


@pytest.fixture(scope="module")
def checkpoint(tiny_labels: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cgc.training.engine import train

    run = tmp_path_factory.mktemp("serve") / "run"
    train(tiny_config(tiny_labels, run, iterations=1, checkpoint_every=1), progress=False)
    return run


@pytest.fixture()
def server(checkpoint: Path, tiny_labels: tuple[Path, Path]):
    """The app over the tiny model (score 0: every detection), and a stand-in Label Studio serving the pictures
    under /data/upload/ only to requests that carry the key."""
    pictures = {path.name: path.read_bytes() for path in sorted(tiny_labels[1].iterdir())}
    fetched: list[httpx.Request] = []

    def label_studio(request: httpx.Request) -> httpx.Response:
        fetched.append(request)
        name = request.url.path.rsplit("/", 1)[-1]
        if request.headers.get("Authorization") != f"Token {KEY}":
            return httpx.Response(401)
        if request.url.path.startswith("/data/upload/") and name in pictures:
            return httpx.Response(200, content=pictures[name])
        if name == "broken.jpg":
            return httpx.Response(200, content=b"not a picture")
        return httpx.Response(404)

    images = TaskImages(transport=httpx.MockTransport(label_studio))
    backend = SalientInstanceBackend(load_model(checkpoint, "cpu", score_threshold=0.0), "cgc-test", images)
    client = TestClient(create_app(backend))
    assert client.post("/setup", json={"project": "1.1", "schema": BRUSH_CONFIG, "hostname": "http://ls.test",
                                       "access_token": KEY}).json() == {"model_version": "cgc-test"}
    return client, sorted(pictures), fetched


def task(task_id: int, picture: str | None) -> dict:
    return {"id": task_id, "data": {"picture": f"/data/upload/1/{picture}"} if picture else {}}


def test_health_and_versions(server) -> None:
    client, _, _ = server
    assert client.get("/health").json() == {"status": "UP", "model_class": "CGCNet", "model_version": "cgc-test",
                                            "training": {"state": "off"}}
    assert client.get("/versions").json() == {"versions": ["cgc-test"]}
    # Training is off: webhook events are acknowledged and ignored, a request to train is refused.
    event = client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 1}})
    assert event.status_code == 200 and event.json()["status"] == "ignored"
    for refused in (client.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 1}}),
                    client.post("/train", json={"project": "1.1"})):
        assert refused.status_code == 501 and "--train-images" in refused.json()["error"]


def test_predict_answers_each_task_in_order_with_boxes_and_brush_masks(server) -> None:
    client, pictures, fetched = server
    answer = client.post("/predict", json={"tasks": [task(7, pictures[0]), task(8, pictures[1])],
                                           "label_config": BRUSH_CONFIG, "project": "1.1"})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert len(results) == 2
    for result in results:
        assert result["model_version"] == "cgc-test" and 0 <= result["score"] <= 1
        kinds = {region["type"] for region in result["result"]}
        assert kinds == {"rectanglelabels", "brushlabels"}
        for region in result["result"]:
            assert region["from_name"] in ("box", "mask") and region["to_name"] == "img"
            assert region["original_width"] == 128 and region["original_height"] == 96
    # A task opened again is answered from the cache, not fetched again.
    before = len(fetched)
    client.post("/predict", json={"tasks": [task(7, pictures[0])], "label_config": BRUSH_CONFIG})
    assert len(fetched) == before


def test_a_polygon_config_gets_polygons(server) -> None:
    client, pictures, _ = server
    answer = client.post("/predict", json={"tasks": [task(1, pictures[2])], "label_config": POLYGON_CONFIG})
    kinds = {region["type"] for region in answer.json()["results"][0]["result"]}
    assert kinds == {"rectanglelabels", "polygonlabels"}


def test_bad_tasks_are_named_and_the_server_keeps_running(server) -> None:
    client, pictures, _ = server
    mixed = client.post("/predict", json={"tasks": [task(1, pictures[0]), task(2, "broken.jpg"), task(3, None),
                                                    task(4, "gone.jpg")], "label_config": BRUSH_CONFIG})
    assert mixed.status_code == 200
    good, broken, without, gone = mixed.json()["results"]
    assert good["result"] and "error" not in good
    assert broken["result"] == [] and broken["error"].startswith("task 2: ") and "broken.jpg" in broken["error"]
    assert without["error"] == "task 3: has no image under data.picture"
    assert gone["error"].startswith("task 4: ") and "HTTP 404" in gone["error"]

    only_bad = client.post("/predict", json={"tasks": [task(5, "broken.jpg")], "label_config": BRUSH_CONFIG})
    assert only_bad.status_code == 400 and only_bad.json()["error"].startswith("task 5: ")
    no_tag = client.post("/predict", json={"tasks": [task(6, pictures[0])],
                                           "label_config": '<View><Image name="img" value="$picture"/></View>'})
    assert no_tag.status_code == 400 and "no RectangleLabels, BrushLabels or PolygonLabels" in no_tag.json()["error"]
    not_json = client.post("/predict", content=b"{", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 422
    assert client.get("/health").status_code == 200


def test_pictures_of_the_server_need_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    seen: list[httpx.Request] = []

    def elsewhere(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404)

    images = TaskImages("http://ls.test", KEY, transport=httpx.MockTransport(elsewhere))
    for url in ("http://ls.test/data/upload/1/a.jpg", "https://pictures.example.org/a.jpg"):
        with pytest.raises(InputError, match="HTTP 404"):
            images.rgb(url)
    assert seen[0].headers["Authorization"] == f"Token {KEY}" and "Authorization" not in seen[1].headers
    with pytest.raises(InputError, match="relative to the Label Studio server"):
        TaskImages(None, None).rgb("/data/upload/1/a.jpg")


def wait_for_round(client: TestClient) -> dict:
    import time

    for _ in range(600):
        training = client.get("/health").json()["training"]
        if training["state"] != "training":
            return training
        time.sleep(0.05)
    raise AssertionError("the training round did not end")


def test_rounds_follow_annotations_and_swap_the_model_without_blocking_predictions(checkpoint: Path, server,
                                                                                    tmp_path: Path) -> None:
    """Two annotations start a round; predictions go on meanwhile with the old model; when the round ends its
    model is served under a new version; annotations reported during a round start the next; a failed round
    keeps the model."""
    import threading

    from cgc.serve.retraining import Retrainer, RetrainingSettings

    client, pictures, _ = server
    backend = client.app.state.backend
    release, calls = threading.Event(), []

    def fake_round(number: int, project: int, served: Path) -> Path:
        calls.append((number, project, served))
        if number == 1:
            assert release.wait(30)
            return checkpoint / "checkpoints" / served.name  # a "new" checkpoint: the same weights
        raise InputError("no annotated task yet")

    retrainer = Retrainer(backend, RetrainingSettings(tmp_path, None, tmp_path / "rounds", every=2), fake_round)
    client = TestClient(create_app(backend, retrainer))
    annotated = {"action": "ANNOTATION_CREATED", "project": {"id": 7}, "annotation": {"id": 1}}
    assert client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 7}}).json()["status"] == "ignored"
    assert client.post("/webhook", json=annotated).json() == {"status": "counted", "new_annotations": 1}
    assert client.post("/webhook", json=annotated).json() == {"status": "started", "round": 1}
    training = client.get("/health").json()["training"]
    assert training["state"] == "training" and training["round"] == 1
    during = client.post("/predict", json={"tasks": [task(1, pictures[0])], "label_config": BRUSH_CONFIG})
    assert during.status_code == 200 and during.json()["model_version"] == "cgc-test"
    assert client.post("/webhook", json=annotated).json() == {"status": "counted", "new_annotations": 1}
    assert client.post("/webhook", json={**annotated, "annotation": [{"id": 2}]}).json() == {"status": "busy",
                                                                                            "round": 1}
    release.set()
    # Round 1 ends and its model is served; the two annotations reported meanwhile start round 2, which fails.
    ended = wait_for_round(client)
    assert [call[:2] for call in calls] == [(1, 7), (2, 7)] and calls[0][2] == resolve_checkpoint(checkpoint)
    assert ended == {"state": "failed", "round": 2, "error": "no annotated task yet", "new_annotations": 0}
    assert client.get("/versions").json() == {"versions": ["cgc-test", "cgc-test-ft1"]}
    after = client.post("/predict", json={"tasks": [task(1, pictures[0])], "label_config": BRUSH_CONFIG})
    assert after.json()["model_version"] == "cgc-test-ft1" and after.json()["results"][0]["model_version"] == "cgc-test-ft1"
    assert client.get("/health").json()["model_version"] == "cgc-test-ft1"
    # Label Studio's Start Training button: /train names the project as "ID.CREATED".
    assert client.post("/train", json={"project": "7.1718000000"}).json() == {"status": "started", "round": 3}
    assert wait_for_round(client)["round"] == 3 and calls[-1][:2] == (3, 7)
    nameless = client.post("/webhook", json={"action": "START_TRAINING"})
    assert nameless.status_code == 200  # the project of the earlier events
    wait_for_round(client)


def test_a_round_without_a_reachable_server_fails_and_says_why(server, tiny_labels: tuple[Path, Path],
                                                               tmp_path: Path) -> None:
    """The real round: its first command (`cgc annotate import`) cannot reach Label Studio; the round fails with
    that command's last line, its log stays in the round folder, and the served model is unchanged."""
    from cgc.serve.retraining import Retrainer, RetrainingSettings

    client, _, _ = server
    backend = client.app.state.backend
    retrainer = Retrainer(backend, RetrainingSettings(tiny_labels[1], None, tmp_path / "rounds", iterations=1,
                                                      device="cpu"))
    client = TestClient(create_app(backend, retrainer))
    backend.images.connect(None, None)
    assert client.post("/train", json={"project": "3.1"}).json() == {"status": "started", "round": 1}
    assert "needs the Label Studio server and a key" in wait_for_round(client)["error"]
    backend.images.connect("http://127.0.0.1:9", KEY)  # nothing listens there
    (tmp_path / "rounds" / "round-007").mkdir(parents=True)  # an earlier server's round: never written over
    retrainer = Retrainer(backend, RetrainingSettings(tiny_labels[1], None, tmp_path / "rounds", device="cpu"))
    client = TestClient(create_app(backend, retrainer))
    assert client.post("/train", json={"project": "3.1"}).json() == {"status": "started", "round": 8}
    failed = wait_for_round(client)
    assert failed["state"] == "failed" and failed["error"].startswith(str(tmp_path / "rounds" / "round-008" / "log.txt"))
    assert "`cgc annotate import` failed (exit 1): Error: cannot connect to Label Studio" in failed["error"]
    assert (tmp_path / "rounds" / "round-008" / "log.txt").read_text().startswith("$ cgc annotate import --project 3")
    assert client.get("/health").json()["model_version"] == "cgc-test"


def test_serve_refuses_training_options_that_do_not_fit(checkpoint: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cgc.cli import cgc

    base = ["serve", "--checkpoint", str(checkpoint)]
    alone = CliRunner().invoke(cgc, [*base, "--train-every", "5"])
    assert alone.exit_code == 2 and "need --train-images" in alone.output
    nowhere = CliRunner().invoke(cgc, [*base, "--train-images", str(tmp_path)])
    assert nowhere.exit_code == 2 and "--train-images needs --train-out" in nowhere.output


@pytest.mark.parametrize("project, expected", [({"id": 4, "title": "x"}, 4), ("12.1718000000", 12), (5, 5),
                                               ("x.1", None), (None, None), ({"title": "x"}, None)])
def test_project_id_from_webhooks_and_train_requests(project, expected) -> None:
    from cgc.serve.retraining import project_id

    assert project_id(project) == expected
