"""The ML backend's web service (FastAPI): Label Studio's routes over `SalientInstanceBackend`.

FastAPI (on uvicorn) because it is well kept, validates nothing it need not (Label Studio's
requests are plain JSON), and its test client runs the service in-process. One line per request
goes to the log: method, route, status, tasks, seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse

from cgc.errors import InputError
from cgc.serve.backend import SalientInstanceBackend
from cgc.serve.retraining import START_TRAINING, Retrainer

log = logging.getLogger("cgc.serve")


def create_app(backend: SalientInstanceBackend, retrainer: Retrainer | None = None) -> FastAPI:
    """The routes Label Studio 1.23 calls: GET /health, POST /setup, POST /predict, POST /webhook and /train
    (and GET /versions). Without a `retrainer`, training from Label Studio is off: /train answers 501 and
    webhook events are acknowledged and ignored."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if retrainer is not None:  # a round's command must not outlive the server
            retrainer.close()

    app = FastAPI(title="cgc: salient instance segmentation for Label Studio", version=backend.model_version,
                  lifespan=lifespan)
    app.state.backend = backend

    @app.middleware("http")
    async def one_line_per_request(request: Request, call_next: Any) -> Any:
        start = time.perf_counter()
        response = await call_next(request)
        log.info("%s %s -> %d in %.2f s%s", request.method, request.url.path, response.status_code,
                 time.perf_counter() - start, getattr(request.state, "note", ""))
        return response

    @app.get("/health")
    def health() -> dict[str, Any]:
        training = retrainer.status() if retrainer is not None else {"state": "off"}
        return {"status": "UP", "model_class": "CGCNet", "model_version": backend.model_version, "training": training}

    @app.get("/versions")
    def versions() -> dict[str, Any]:
        return {"versions": list(backend.versions)}

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
    def webhook(request: Request, body: dict[str, Any] = Body(...)) -> Any:
        action = body.get("action")
        request.state.note = f", {action}" if isinstance(action, str) else ""
        if retrainer is not None:
            return answer(request, retrainer.on_webhook, body)
        if action == START_TRAINING:
            return training_is_off()
        return {"status": "ignored", "action": action}

    @app.post("/train")
    def train(request: Request, body: dict[str, Any] = Body(...)) -> Any:
        if retrainer is None:
            return training_is_off()
        return answer(request, retrainer.on_train_request, body)

    return app


def training_is_off() -> JSONResponse:
    return JSONResponse({"error": "training from Label Studio is off: start cgc serve with --train-images (and "
                                  "--train-out), or train with `cgc train --init-from` and restart cgc serve"},
                        status_code=501)


def answer(request: Request, handler: Any, body: dict[str, Any]) -> Any:
    """The handler's answer, or a 400 with the one-line reason for a request that cannot be served."""
    try:
        return handler(body)
    except InputError as exc:
        request.state.note = f" ({exc})"
        return JSONResponse({"error": str(exc)}, status_code=400)
