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
from helpers import short_run, tiny_config

KEY = "0123456789abcdef0123456789abcdef01234567"
BRUSH_CONFIG = ('<View><Image name="img" value="$picture"/><RectangleLabels name="box" toName="img">'
                '<Label value="salient"/></RectangleLabels><BrushLabels name="mask" toName="img">'
                '<Label value="salient"/></BrushLabels></View>')
POLYGON_CONFIG = BRUSH_CONFIG.replace("BrushLabels", "PolygonLabels")


@pytest.fixture(scope="module")
def checkpoint(tiny_labels: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cgc.training.engine import train

    run = tmp_path_factory.mktemp("serve") / "run"
    train(tiny_config(tiny_labels, run, **short_run(1)), progress=False)
    return run


@pytest.fixture()
def server(checkpoint: Path, tiny_labels: tuple[Path, Path]):
    """The app over the tiny model (score 0: every detection), the operator's Label Studio at http://ls.test, and a
    stand-in network: ls.test serves the pictures under /data/upload/ only to requests that carry the key; every
    other host answers 200 to anything, so a request that reaches one shows up in `fetched`."""
    pictures = {path.name: path.read_bytes() for path in sorted(tiny_labels[1].iterdir())}
    fetched: list[httpx.Request] = []

    def network(request: httpx.Request) -> httpx.Response:
        fetched.append(request)
        name = request.url.path.rsplit("/", 1)[-1]
        if request.url.host != "ls.test":
            return httpx.Response(200, content=next(iter(pictures.values())))
        if request.url.path.startswith("/moved/"):
            return httpx.Response(302, headers={"Location": request.url.path.replace("/moved/", "/data/upload/")})
        if request.url.path.startswith("/away/"):
            return httpx.Response(302, headers={"Location": f"http://evil.test/{name}"})
        if request.headers.get("Authorization") != f"Token {KEY}":
            return httpx.Response(401)
        if request.url.path.startswith("/data/upload/") and name in pictures:
            return httpx.Response(200, content=pictures[name])
        if name == "broken.jpg":
            return httpx.Response(200, content=b"not a picture")
        return httpx.Response(404)

    images = TaskImages("http://ls.test", None, transport=httpx.MockTransport(network))
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

    images = TaskImages("http://ls.test", KEY, ("pictures.example.org",), transport=httpx.MockTransport(elsewhere))
    for url in ("http://ls.test/data/upload/1/a.jpg", "https://pictures.example.org/a.jpg"):
        with pytest.raises(InputError, match="HTTP 404"):
            images.rgb(url)
    assert seen[0].headers["Authorization"] == f"Token {KEY}" and "Authorization" not in seen[1].headers
    with pytest.raises(InputError, match="relative to the Label Studio server"):
        TaskImages(None, None).rgb("/data/upload/1/a.jpg")


# -- what a stranger who can reach the port can make the server do ---------------------------------------


def test_setup_cannot_redirect_the_key_to_another_host(server) -> None:
    """/setup's hostname is ignored: pictures (and the key) still go to the operator's server only."""
    client, pictures, fetched = server
    taken = client.post("/setup", json={"hostname": "http://evil.test", "access_token": KEY})
    assert taken.status_code == 200
    answer = client.post("/predict", json={"tasks": [task(1, pictures[0])], "label_config": BRUSH_CONFIG})
    assert answer.status_code == 200 and answer.json()["results"][0]["result"]
    assert {request.url.host for request in fetched} == {"ls.test"}
    assert all(request.headers["Authorization"] == f"Token {KEY}" for request in fetched)


def test_a_key_the_operator_gave_is_not_replaced_by_setup(checkpoint: Path) -> None:
    seen: list[httpx.Request] = []
    images = TaskImages("http://ls.test", KEY, transport=httpx.MockTransport(
        lambda request: seen.append(request) or httpx.Response(404)))
    backend = SalientInstanceBackend(load_model(checkpoint, "cpu"), "cgc-test", images)
    backend.setup({"hostname": "http://ls.test", "access_token": "0" * 40})
    with pytest.raises(InputError, match="HTTP 404"):
        images.rgb("/data/upload/1/a.jpg")
    assert seen[0].headers["Authorization"] == f"Token {KEY}"


@pytest.mark.parametrize("url", ["http://evil.test/a.jpg", "http://127.0.0.1:22/a.jpg", "http://127.0.0.1:1/a.jpg",
                                 "http://ls.test:8080/a.jpg", "https://ls.test/a.jpg", "http://user@ls.test/a.jpg",
                                 "file:///etc/passwd", "ftp://ls.test/a.jpg", "http://[::1]:9090/health"])
def test_tasks_cannot_make_the_server_fetch_other_hosts_or_ports(server, url: str) -> None:
    """Server-side request forgery: a URL off the operator's server is refused before any connection, with the same
    words whether something listens there or not."""
    client, _, fetched = server
    answer = client.post("/predict", json={"tasks": [{"id": 9, "data": {"picture": url}}],
                                           "label_config": BRUSH_CONFIG})
    assert answer.status_code == 400 and fetched == []
    assert answer.json()["error"].endswith("is not on the Label Studio server http://ls.test nor on a host allowed "
                                           "with --allow-image-host: not fetched")


def test_redirects_are_followed_on_the_server_only(server) -> None:
    client, pictures, fetched = server
    moved = client.post("/predict", json={"tasks": [{"id": 1, "data": {"picture": f"/moved/1/{pictures[0]}"}}],
                                          "label_config": BRUSH_CONFIG})
    assert moved.status_code == 200 and moved.json()["results"][0]["result"]
    away = client.post("/predict", json={"tasks": [{"id": 2, "data": {"picture": f"/away/1/{pictures[0]}"}}],
                                         "label_config": BRUSH_CONFIG})
    assert away.status_code == 400 and "http://evil.test/" in away.json()["error"]
    assert {request.url.host for request in fetched} == {"ls.test"}


def test_a_request_spends_a_bounded_number_of_pixels(server) -> None:
    client, pictures, _ = server
    client.app.state.backend.request_pixels = 2 * 128 * 96  # two of the tiny pictures
    answer = client.post("/predict", json={"tasks": [task(index, name) for index, name in enumerate(pictures[:3])],
                                           "label_config": BRUSH_CONFIG})
    assert answer.status_code == 200
    first, second, third = answer.json()["results"]
    assert first["result"] and second["result"] and third["result"] == []
    assert "exceed its budget of 24576 pixels" in third["error"]
    many = client.post("/predict", json={"tasks": [task(index, pictures[0]) for index in range(101)],
                                         "label_config": BRUSH_CONFIG})
    assert many.status_code == 400 and "101 tasks, more than 100" in many.json()["error"]


def test_downloads_are_capped_in_bytes(server, monkeypatch: pytest.MonkeyPatch) -> None:
    from cgc.serve import task_images

    client, pictures, _ = server
    monkeypatch.setattr(task_images, "PICTURE_BYTES", 100)
    answer = client.post("/predict", json={"tasks": [task(1, pictures[0])], "label_config": BRUSH_CONFIG})
    assert answer.status_code == 400 and "more than 100: not fetched" in answer.json()["error"]


def test_bodies_over_the_limit_are_refused_while_read(checkpoint: Path) -> None:
    backend = SalientInstanceBackend(load_model(checkpoint, "cpu"), "cgc-test", TaskImages("http://ls.test"))
    client = TestClient(create_app(backend, max_body_bytes=1000))
    body = b'{"tasks": [' + b'{"id": 1}, ' * 200 + b'{"id": 2}]}'
    declared = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413 and "over 1000 bytes" in declared.json()["error"]
    streamed = client.post("/predict", content=iter([body[:600], body[600:]]),
                           headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert client.post("/setup", json={"schema": BRUSH_CONFIG}).status_code == 200


def test_credentials_guard_every_route(checkpoint: Path) -> None:
    backend = SalientInstanceBackend(load_model(checkpoint, "cpu"), "cgc-test", TaskImages("http://ls.test"))
    client = TestClient(create_app(backend, credentials=("studio", "s3cret")))
    for method, route in (("get", "/health"), ("get", "/versions"), ("post", "/setup"), ("post", "/predict"),
                          ("post", "/webhook"), ("post", "/train")):
        for auth in (None, ("studio", "wrong"), ("other", "s3cret")):
            refused = client.request(method.upper(), route, json={}, auth=auth)
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == 'Basic realm="cgc"'
    assert client.get("/health", auth=("studio", "s3cret")).status_code == 200
    assert client.post("/setup", json={"schema": BRUSH_CONFIG}, auth=("studio", "s3cret")).status_code == 200


def test_serve_refuses_bad_credentials_and_urls_in_one_line(checkpoint: Path) -> None:
    from click.testing import CliRunner

    from cgc.cli import cgc

    base = ["serve", "--checkpoint", str(checkpoint), "--port", "1"]
    for extra, message in ((["--auth", "studio"], "--auth must be USER:PASSWORD"),
                           (["--url", "http://admin:hunter2@ls.test"], "is not an http(s) URL without a user name"),
                           (["--url", "http://ls.test", "--api-key", "abc\ndef"], "holds characters no key has"),
                           (["--url", "http://ls.test", "--allow-image-host", "a@b"], "not a host name")):
        result = CliRunner().invoke(cgc, [*base, *extra])
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
        assert "hunter2" not in result.output and "def" not in result.output.split(message)[-1]


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
    backend.images = TaskImages(None, None)
    assert client.post("/train", json={"project": "3.1"}).json() == {"status": "started", "round": 1}
    assert "needs the Label Studio server and a key" in wait_for_round(client)["error"]
    backend.images = TaskImages("http://127.0.0.1:9", KEY)  # nothing listens there
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
