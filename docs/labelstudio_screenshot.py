"""The documentation's picture of `cgc serve` in Label Studio: a labelling page showing the backend's prediction.

It starts what a user would run: a Label Studio server (the one the tests use, in
.venv-labelstudio), `cgc serve` on a trained model, and `cgc annotate setup --connect-model` on a
few pictures. Label Studio asks the backend for the tasks' predictions, and a headless Chromium,
logged in as the project's owner, photographs the labelling page of the first task.

Needs, beyond `make labelstudio`: Debian's Chromium (`apt-get install chromium`) and Playwright
(`.venv/bin/pip install -e '.[screenshots]'`).

    .venv/bin/python docs/labelstudio_screenshot.py --checkpoint demo-output/run \\
        --images demo-output/heldout/imgs --out docs/images/labelstudio-prediction.jpg
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the tests' Label Studio launcher: one way to start the server

from labelstudio_server import free_port, running_label_studio  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def cgc(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cgc.cli", *args], check=True, capture_output=True, text=True,
                          **kwargs)


def wait_for(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer in {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True, help="pictures; the first --count go to the project")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--task", type=int, default=0, help="which of them to photograph")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, nargs=2, default=(1400, 860), metavar=("WIDTH", "HEIGHT"))
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from cgc.annotate.labelstudio_client import connect_label_studio

    with tempfile.TemporaryDirectory() as scratch, running_label_studio(Path(scratch)) as studio:
        pictures = Path(scratch) / "pictures"
        pictures.mkdir()
        for picture in sorted(args.images.iterdir())[:args.count]:
            (pictures / picture.name).write_bytes(picture.read_bytes())
        port = free_port()
        environment = {key: value for key, value in os.environ.items() if not key.startswith("LABEL_STUDIO_")}
        serving = subprocess.Popen([sys.executable, "-m", "cgc.cli", "serve", "--checkpoint", str(args.checkpoint),
                                    "--port", str(port), "--device", "cpu", "--url", studio.url], env=environment,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(f"http://127.0.0.1:{port}/health")
            keys = ["--url", studio.url, "--api-key", studio.api_key]
            setup = cgc("annotate", "setup", "--images", str(pictures), "--title", "Salient instances",
                        "--mask-tool", "brush", "--connect-model", f"http://127.0.0.1:{port}", *keys)
            project = int(setup.stdout.split("project ", 1)[1].split()[0])
            admin = connect_label_studio(studio.url, studio.api_key)
            version = httpx.get(f"http://127.0.0.1:{port}/health").json()["model_version"]
            admin.client.actions.create(id="retrieve_tasks_predictions", project=project,
                                        selected_items={"all": True, "excluded": []})
            # the editor opens each task with these predictions as its pre-annotation
            admin.client.projects.update(id=project, model_version=version, show_collab_predictions=True)
            tasks = sorted(admin.client.tasks.list(project=project), key=lambda task: task.id)
            task = tasks[args.task].id
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM)
                page = browser.new_page(viewport={"width": args.size[0], "height": args.size[1]})
                page.goto(f"{studio.url}/user/login")
                page.fill("input[name=email]", studio.username)
                page.fill("input[name=password]", studio.password)
                page.click("button[type=submit]")
                page.wait_for_load_state("networkidle")
                page.goto(f"{studio.url}/projects/{project}/data?task={task}")
                page.wait_for_load_state("networkidle")
                page.wait_for_timeout(5000)  # the labelling editor draws the picture and the regions
                args.out.parent.mkdir(parents=True, exist_ok=True)
                jpeg = args.out.suffix.lower() in (".jpg", ".jpeg")
                page.screenshot(path=str(args.out), **({"type": "jpeg", "quality": 85} if jpeg else {}))
                browser.close()
        finally:
            serving.terminate()
            serving.wait(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
