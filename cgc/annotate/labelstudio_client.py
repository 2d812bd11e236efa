"""A connection to a live Label Studio server: credentials, retries and one-line errors.

Everything that talks to the server goes through `label-studio-sdk` (`LabelStudio`), built
here with two changes to its defaults, except the one request it does not wrap, a multipart
upload of image files (`post_files`), which uses the same httpx client and the same key:

- Retries live in one place, `RetryTransport`, an httpx transport under the SDK's client (the
  SDK's own retries are switched off so attempts do not multiply). Transient failures are
  retried with exponential backoff and jitter, honouring `Retry-After`: a refused or timed-out
  connection and HTTP 429/502/503/504 for every request; HTTP 500, read timeouts and dropped
  connections only for idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE), because a POST
  that reached the server may already have created tasks or predictions.
- Every failure leaves as `LabelStudioError` (an `InputError`, so the command line prints one
  line and no traceback): wrong URL, refused connection, refused key, missing project. The API
  key is never part of a message; `scrub` removes it from any text that might echo it.

Keys: legacy tokens (40 hex characters, "Token <key>") and personal access tokens (JWT refresh
tokens, exchanged for short-lived access tokens) both work; the SDK tells them apart.
"""

from __future__ import annotations

import email.utils
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx

from cgc.annotate.labelstudio_defaults import API_KEY_ENV, DEFAULT_TIMEOUT, URL_ENV
from cgc.errors import InputError


IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Statuses a proxy or a busy server answers before doing anything: safe to retry for any method.
RETRY_ANY_METHOD_STATUSES = frozenset({429, 502, 503, 504})
RETRY_IDEMPOTENT_STATUSES = frozenset({500})


class LabelStudioError(InputError):
    """The server cannot be reached, refuses the key, or lacks what was asked for."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry transient failures (delays in seconds)."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0
    jitter: float = 0.25

    def delay(self, retry: int, response: httpx.Response | None = None) -> float:
        """Backoff before retry number `retry` (0-based); a server's Retry-After wins."""
        if response is not None:
            after = retry_after_seconds(response.headers.get("retry-after"))
            if after is not None:
                return min(after, self.max_retry_after)
        backoff = min(self.base_delay * 2**retry, self.max_delay)
        return backoff * (1 + random.uniform(-self.jitter, self.jitter))


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class RetryTransport(httpx.BaseTransport):
    """An httpx transport that retries transient failures of the transport it wraps."""

    def __init__(
        self,
        transport: httpx.BaseTransport | None = None,
        policy: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.transport = transport if transport is not None else httpx.HTTPTransport()
        self.policy = policy
        self.sleep = sleep
        self.retries_done = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # buffer the body (e.g. a multipart upload) so it can be sent again
        idempotent = request.method.upper() in IDEMPOTENT_METHODS
        for attempt in range(self.policy.attempts):
            last = attempt == self.policy.attempts - 1
            try:
                response = self.transport.handle_request(request)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
                if last:
                    raise
                self._wait(attempt)
                continue
            except (httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError):
                if last or not idempotent:
                    raise
                self._wait(attempt)
                continue
            status = response.status_code
            transient = status in RETRY_ANY_METHOD_STATUSES or (idempotent and status in RETRY_IDEMPOTENT_STATUSES)
            if not transient or last:
                return response
            delay = self.policy.delay(attempt, response)
            response.close()
            self._wait(attempt, delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, attempt: int, delay: float | None = None) -> None:
        self.retries_done += 1
        self.sleep(self.policy.delay(attempt) if delay is None else delay)

    def close(self) -> None:
        self.transport.close()


def resolve_credentials(url: str | None, api_key: str | None) -> tuple[str, str]:
    """URL and key from the options, else from LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY."""
    url = (url or os.environ.get(URL_ENV) or "").strip()
    api_key = resolve_api_key(api_key or os.environ.get(API_KEY_ENV))
    if not url:
        raise LabelStudioError(f"no Label Studio URL: pass --url or set {URL_ENV}")
    if not api_key:
        raise LabelStudioError(f"no Label Studio API key: pass --api-key or set {API_KEY_ENV}")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise LabelStudioError(f"not an http(s) URL: {redact_url(url)!r} (expected e.g. http://localhost:8080)")
    return url.rstrip("/"), api_key


KEY_CHARACTERS = re.compile(r"[A-Za-z0-9._~+/=-]+")  # what legacy tokens (hex) and JWTs (base64url) are made of


def resolve_api_key(api_key: str | None) -> str | None:
    """The key without surrounding white space; one with any other character than a token's is refused without
    being shown (a pasted key with a line break or a space in it would go into error messages and headers)."""
    api_key = (api_key or "").strip()
    if api_key and not KEY_CHARACTERS.fullmatch(api_key):
        raise LabelStudioError("the Label Studio API key holds characters no key has (a line break, a space or a "
                               "quote?): copy it again from Account & Settings")
    return api_key or None


def redact_url(url: str) -> str:
    """The URL as it may be shown: a password in it replaced by ***."""
    try:
        parsed = urlparse(url)
        password = parsed.password
    except ValueError:
        return url.split("@", 1)[-1] if "@" in url else url
    if not password:
        return url
    user = parsed.username or ""
    return parsed._replace(netloc=f"{user}:***@{parsed.netloc.rsplit('@', 1)[1]}").geturl()


@dataclass
class LabelStudioConnection:
    """An SDK client plus what is needed to explain failures (never the key itself)."""

    client: Any
    url: str
    _api_key: str
    transport: RetryTransport
    http: httpx.Client

    def scrub(self, text: str) -> str:
        return scrub(text, self._api_key, url_password(self.url))

    @contextmanager
    def errors(self, doing: str, project: int | None = None) -> Iterator[None]:
        """Turn SDK and transport failures while `doing` something into LabelStudioError."""
        try:
            yield
        except LabelStudioError:
            raise
        except Exception as exc:  # noqa: BLE001 - everything the SDK may raise becomes one line
            raise LabelStudioError(self.scrub(explain_failure(exc, self.url, doing, project))) from None

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header the SDK sends, for the requests it does not wrap.

        A legacy token goes as "Token <key>"; a personal access token (a JWT refresh token) is
        exchanged for a short-lived access token through the SDK's public `tokens.refresh`.
        """
        if not is_jwt(self._api_key):
            return {"Authorization": f"Token {self._api_key}"}
        with self.errors("exchanging the personal access token"):
            access = self.client.tokens.refresh(refresh=self._api_key).access
        return {"Authorization": f"Bearer {access}"}

    def post_files(self, path: str, files: dict[str, Any], doing: str, project: int | None = None) -> Any:
        """A multipart POST, which the SDK does not wrap (uploading image files into a project).

        It goes through the same retrying httpx client as the SDK's requests, with the same key.
        """
        headers = self.auth_headers()
        with self.errors(doing, project):
            response = self.http.post(f"{self.url}/{path.lstrip('/')}", files=files, headers=headers)
            if response.status_code >= 400:
                from label_studio_sdk.core.api_error import ApiError

                raise ApiError(status_code=response.status_code, headers=dict(response.headers), body=_body(response))
            return response.json() if response.content else None


def is_jwt(key: str) -> bool:
    """A personal access token is a JWT (three dot-separated parts); a legacy token is 40 hex characters."""
    return key.count(".") == 2


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:500]


def scrub(text: str, *secrets: str | None) -> str:
    """`text` with every secret replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def url_password(url: str) -> str | None:
    try:
        return urlparse(url).password
    except ValueError:
        return None


def explain_failure(exc: BaseException, url: str, doing: str, project: int | None = None) -> str:
    """One line saying what went wrong and what to check; never includes request headers, nor a password in `url`."""
    url = redact_url(url)
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    if isinstance(exc, httpx.ConnectError):
        reason = str(exc) or type(exc).__name__
        if "refused" in reason.lower():
            return f"cannot connect to Label Studio at {url}: connection refused (is the server running?)"
        return f"cannot connect to Label Studio at {url}: {reason}"
    if isinstance(exc, httpx.TimeoutException):
        return f"Label Studio at {url} did not answer in time while {doing}"
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return f"not a usable URL: {url} ({exc})"
    if isinstance(exc, httpx.TransportError):
        return f"network error talking to Label Studio at {url} while {doing}: {exc}"
    if status in (401, 403):
        detail = _detail(body)
        return (
            f"Label Studio at {url} refused the API key while {doing} (HTTP {status}"
            + (f": {detail}" if detail else "")
            + "); check --api-key / LABEL_STUDIO_API_KEY (Account & Settings > Personal Access Token, or a legacy token)"
        )
    if status == 404:
        if project is not None:
            return f"project {project} not found on Label Studio at {url} (or this key cannot see it)"
        return f"no such Label Studio API at {url} while {doing} (HTTP 404): is this the server's base URL?"
    if isinstance(status, int):
        detail = _detail(body)
        return f"Label Studio at {url} answered HTTP {status} while {doing}" + (f": {detail}" if detail else "")
    if isinstance(exc, ValueError):  # e.g. an HTML page where JSON was expected
        return f"{url} did not answer like a Label Studio API while {doing}: is this the server's base URL?"
    return f"talking to Label Studio at {url} failed while {doing}: {type(exc).__name__}: {exc}"


def _detail(body: Any) -> str:
    if isinstance(body, dict):
        parts = [str(body[key]) for key in ("detail", "message", "error", "validation_errors") if body.get(key)]
        if parts:
            return " ".join(" ".join(parts).split())[:300]
        return " ".join(str(body).split())[:300]
    if isinstance(body, str) and body.strip() and not body.lstrip().startswith("<"):
        return " ".join(body.split())[:300]
    return ""


def connect_label_studio(
    url: str | None,
    api_key: str | None,
    policy: RetryPolicy = RetryPolicy(),
    timeout: float = DEFAULT_TIMEOUT,
    transport: httpx.BaseTransport | None = None,
    check: bool = True,
) -> LabelStudioConnection:
    """An SDK client for the server; with `check`, asks who the key belongs to, so a dead server,
    a wrong URL or a bad key fail here with a clear message instead of halfway through."""
    url, api_key = resolve_credentials(url, api_key)
    from label_studio_sdk import LabelStudio

    retrying = RetryTransport(transport, policy)
    http = httpx.Client(transport=retrying, timeout=timeout, follow_redirects=True)
    options: dict[str, Any] = {"base_url": url, "api_key": api_key, "httpx_client": http, "timeout": timeout}
    try:
        try:
            client = LabelStudio(**options, max_retries=0)
        except TypeError:  # older SDKs have no max_retries
            client = LabelStudio(**options)
    except Exception as exc:  # noqa: BLE001 - e.g. an expired personal access token
        raise LabelStudioError(scrub(explain_failure(exc, url, "reading the API key"), api_key,
                                     url_password(url))) from None
    connection = LabelStudioConnection(client, url, api_key, retrying, http)
    if check:
        with connection.errors("connecting"):
            whoami = getattr(client.users, "whoami", None) or client.users.get_current_user
            whoami()
    return connection


def as_plain(obj: Any) -> Any:
    """An SDK model (pydantic v1 or v2) or plain data -> JSON-like dicts and lists."""
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json", by_alias=True)
    if hasattr(obj, "dict") and callable(obj.dict) and not isinstance(obj, dict):
        import json

        return json.loads(obj.json(by_alias=True))
    if isinstance(obj, dict):
        return {key: as_plain(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [as_plain(value) for value in obj]
    return obj


# -- what the commands share about projects and tasks --------------------------------------------

PAGE_SIZE = 500
# Django's storage (and so Label Studio's upload) keeps only these characters of a file name.
_STORED_NAME_DROP = re.compile(r"(?u)[^-\w.]")


def get_project(connection: LabelStudioConnection, project_id: int) -> dict[str, Any]:
    """The project as a plain dict; a missing one is a one-line error naming it."""
    with connection.errors(f"reading project {project_id}", project_id):
        return as_plain(connection.client.projects.get(id=project_id))


def iter_project_tasks(
    connection: LabelStudioConnection, project_id: int, fields: str = "all", page_size: int = PAGE_SIZE
) -> Iterator[dict[str, Any]]:
    """Every task of a project as a plain dict, page by page (the SDK's pager fetches lazily)."""
    with connection.errors(f"listing the tasks of project {project_id}", project_id):
        for task in connection.client.tasks.list(project=project_id, fields=fields, page_size=page_size):
            yield as_plain(task)


def task_image_ref(data: Any, image_key: str = "image") -> tuple[str | None, bool]:
    """A task's image reference: `data[image_key]`, else the first string value of the data.

    The flag says whether it fell back, which an import reports.
    """
    if not isinstance(data, dict):
        return None, False
    value = data.get(image_key)
    if isinstance(value, str) and value.strip():
        return value, False
    for value in data.values():
        if isinstance(value, str) and value.strip():
            return value, True
    return None, False


def stored_file_name(name: str) -> str:
    """The name Label Studio's upload keeps (Django's get_valid_filename): spaces -> _, odd characters dropped."""
    return _STORED_NAME_DROP.sub("", name.strip().replace(" ", "_"))
