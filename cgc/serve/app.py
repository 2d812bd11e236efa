"""The ML backend's web service (FastAPI): Label Studio's routes over `SalientInstanceBackend`.

FastAPI (on uvicorn) because it is well kept, validates nothing it need not (Label Studio's
requests are plain JSON), and its test client runs the service in-process. One line per request
goes to the log: method, route, status, tasks, seconds.

Anyone who can reach the port can send a request (the threat model is in docs/serving.md), so
every request is bounded before a handler reads it: with `credentials` set, a request without
them is refused (HTTP basic auth, which Label Studio sends to a model that asks for it), and a
body above `max_body_bytes` is refused while it is being read, not after.
"""

from __future__ import annotations

import base64
import hmac
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

MAX_BODY_BYTES = 16 * 2**20  # Label Studio's requests hold tasks' data (URLs) and a labelling config: kilobytes


class BodyTooLarge(Exception):
    pass


class BoundedRequests:
    """ASGI middleware: basic auth (when `credentials` is given) and a cap on the body, both checked before the
    application reads anything."""

    def __init__(self, app: Any, credentials: tuple[str, str] | None, max_body_bytes: int) -> None:
        self.app = app
        self.expected = None if credentials is None else "Basic " + base64.b64encode(
            f"{credentials[0]}:{credentials[1]}".encode()).decode()
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        if self.expected is not None and not hmac.compare_digest(
                headers.get("authorization", "").encode(), self.expected.encode()):
            log.info("%s %s -> 401 (no or wrong credentials)", scope["method"], scope["path"])
            return await JSONResponse({"error": "this model server needs its user name and password (HTTP basic "
                                                "auth): enter them in Label Studio's model settings"},
                                      status_code=401, headers={"WWW-Authenticate": 'Basic realm="cgc"'})(
                scope, receive, send)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return await self.too_large(scope, receive, send)
        received, exceeded, answered = 0, False, False

        async def counted() -> dict[str, Any]:
            nonlocal received, exceeded
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                exceeded = True
                raise BodyTooLarge
            return message

        async def send_unless_exceeded(message: dict[str, Any]) -> None:
            nonlocal answered
            if exceeded:  # whatever the application made of the cut body, the answer is 413
                if not answered:
                    answered = True
                    await self.too_large(scope, receive, send)
                return
            await send(message)

        try:
            await self.app(scope, counted, send_unless_exceeded)
        except BodyTooLarge:
            pass
        if exceeded and not answered:
            await self.too_large(scope, receive, send)

    async def too_large(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        log.info("%s %s -> 413 (body over %d bytes)", scope["method"], scope["path"], self.max_body_bytes)
        await JSONResponse({"error": f"request body over {self.max_body_bytes} bytes: send fewer tasks per "
                                     f"request"}, status_code=413)(scope, receive, send)


def create_app(backend: SalientInstanceBackend, retrainer: Retrainer | None = None,
               credentials: tuple[str, str] | None = None, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The routes Label Studio 1.23 calls: GET /health, POST /setup, POST /predict, POST /webhook and /train
    (and GET /versions). Without a `retrainer`, training from Label Studio is off: /train answers 501 and
    webhook events are acknowledged and ignored. `credentials` (user, password) are then required of every
    request; bodies over `max_body_bytes` are refused."""

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

    app.add_middleware(BoundedRequests, credentials=credentials, max_body_bytes=max_body_bytes)  # outermost
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
