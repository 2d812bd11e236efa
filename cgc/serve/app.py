"""The ML backend's web service (FastAPI): Label Studio's routes over `SalientInstanceBackend`.

FastAPI (on uvicorn) because it is well kept, validates nothing it need not (Label Studio's
requests are plain JSON), and its test client runs the service in-process. One line per request
goes to the log: method, route, status, tasks, seconds.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse

from cgc.errors import InputError
from cgc.serve.backend import SalientInstanceBackend

log = logging.getLogger("cgc.serve")


def create_app(backend: SalientInstanceBackend) -> FastAPI:
    """The routes Label Studio 1.23 calls: GET /health, POST /setup, POST /predict (and GET /versions)."""
    app = FastAPI(title="cgc: salient instance segmentation for Label Studio", version=backend.model_version)

    @app.middleware("http")
    async def one_line_per_request(request: Request, call_next: Any) -> Any:
        start = time.perf_counter()
        response = await call_next(request)
        log.info("%s %s -> %d in %.2f s%s", request.method, request.url.path, response.status_code,
                 time.perf_counter() - start, getattr(request.state, "note", ""))
        return response

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "UP", "model_class": "CGCNet", "model_version": backend.model_version}

    @app.get("/versions")
    def versions() -> dict[str, Any]:
        return {"versions": [backend.model_version]}

    # Plain (not async) handlers: FastAPI runs them in worker threads, so a prediction never blocks /health.
    @app.post("/setup")
    def setup(request: Request, body: dict[str, Any] = Body(...)) -> Any:
        return answer(request, backend.setup, body)

    @app.post("/predict")
    def predict(request: Request, body: dict[str, Any] = Body(...)) -> Any:
        tasks = body.get("tasks")
        request.state.note = f", {len(tasks)} tasks" if isinstance(tasks, list) else ""
        return answer(request, backend.predict, body)

    @app.post("/webhook")
    @app.post("/train")
    def train() -> JSONResponse:
        return JSONResponse({"error": "training from Label Studio is not available in this cgc serve; train with "
                                      "`cgc train` and restart `cgc serve` with the new checkpoint"}, status_code=501)

    return app


def answer(request: Request, handler: Any, body: dict[str, Any]) -> Any:
    """The handler's answer, or a 400 with the one-line reason for a request that cannot be served."""
    try:
        return handler(body)
    except InputError as exc:
        request.state.note = f" ({exc})"
        return JSONResponse({"error": str(exc)}, status_code=400)
