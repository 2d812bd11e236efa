"""How long `cgc serve` takes to answer Label Studio's /predict, per picture, on this machine.

The service runs in-process (FastAPI's test client) on a trained checkpoint; a stand-in Label Studio
serves the pictures, so the time is the backend's own: fetching and decoding the picture, the
network, and turning its instances into Label Studio regions (boxes and brush masks). The first
request of each picture fetches it; the figures are of requests for pictures not seen before, one
task per request and several per request.

    .venv/bin/python benchmarks/serve_latency.py --checkpoint demo-output/run --images demo-output/heldout/imgs
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import httpx

from cgc.fileio import atomic_write_json

CONFIG = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
          '<Label value="salient"/></RectangleLabels><BrushLabels name="mask" toName="image">'
          '<Label value="salient"/></BrushLabels></View>')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--pictures", type=int, default=12, help="pictures per setting")
    parser.add_argument("--batch", type=int, default=4, help="tasks per request in the batched setting")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/serve_latency.json"))
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from cgc.api import load_model
    from cgc.serve.app import create_app
    from cgc.serve.backend import SalientInstanceBackend
    from cgc.serve.task_images import TaskImages

    pictures = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    needed = 2 * args.pictures
    if len(pictures) < needed:
        raise SystemExit(f"{args.images}: {needed} pictures needed, {len(pictures)} found")
    files = {p.name: p.read_bytes() for p in pictures[:needed]}
    images = TaskImages("http://ls.test", "0" * 40, transport=httpx.MockTransport(
        lambda request: httpx.Response(200, content=files[request.url.path.rsplit("/", 1)[-1]])))
    predictor = load_model(args.checkpoint, "cpu")
    client = TestClient(create_app(SalientInstanceBackend(predictor, "latency", images)))
    tasks = [{"id": n, "data": {"image": f"/data/upload/1/{name}"}} for n, name in enumerate(files)]

    client.post("/predict", json={"tasks": tasks[:1], "label_config": CONFIG})  # warm-up (a seen picture later)
    rows = []
    for label, size, chosen in (("one task per request", 1, tasks[1:args.pictures + 1]),
                                (f"{args.batch} tasks per request", args.batch, tasks[args.pictures + 1:needed])):
        per_picture, regions = [], 0
        for start in range(0, len(chosen) - size + 1, size):
            batch = chosen[start:start + size]
            begin = time.perf_counter()
            answer = client.post("/predict", json={"tasks": batch, "label_config": CONFIG})
            per_picture.append((time.perf_counter() - begin) / len(batch))
            answer.raise_for_status()
            regions += sum(len(result["result"]) for result in answer.json()["results"])
        rows.append({"setting": label, "requests": len(per_picture), "median_seconds_per_picture":
                     round(statistics.median(per_picture), 3), "regions": regions})
    height, width = predictor.predict(pictures[0]).masks.shape[1:]
    print(f"cgc serve /predict on CPU ({args.checkpoint}, {predictor.loaded.config.network.mask.name} head, "
          f"{width}x{height} pictures, score >= {predictor.score_threshold:.2f})")
    print(f"{'setting':<24}{'requests':>9}{'s / picture':>13}{'regions':>9}")
    for row in rows:
        print(f"{row['setting']:<24}{row['requests']:>9}{row['median_seconds_per_picture']:>13.3f}{row['regions']:>9}")
    atomic_write_json(args.out, {"settings": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
