"""`cgc serve`, the Label Studio ML backend: its routes in-process, with the task pictures on a stand-in server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from cgc.api import load_model
from cgc.errors import InputError
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
    assert client.get("/health").json() == {"status": "UP", "model_class": "CGCNet", "model_version": "cgc-test"}
    assert client.get("/versions").json() == {"versions": ["cgc-test"]}


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
