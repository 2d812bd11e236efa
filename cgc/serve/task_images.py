"""The pictures of Label Studio tasks, fetched from the one server the operator named, within budgets.

A task's image is a URL: absolute (`http://host/data/upload/3/ab12-x.jpg`) or relative to the
server (`/data/upload/3/ab12-x.jpg`). What a request may make the backend do is bounded, because
anyone who can reach `cgc serve` can send it a request (see docs/serving.md, the threat model):

- The server's URL is the operator's (`--url` or LABEL_STUDIO_URL), never a request's: the
  `hostname` that Label Studio's `/setup` sends is ignored, so no request can redirect the key.
- The key goes only to that server (origin: scheme, host and port). `/setup`'s `access_token`
  is used only where the operator gave no key, and only for that server.
- Pictures come only from that server or the hosts the operator allows (`--allow-image-host`);
  any other URL is refused before a connection is made, so a task cannot probe other ports or
  hosts (server-side request forgery). Redirects are followed only to allowed origins.
- Each download is capped in bytes and time, each picture's header is checked against the pixel
  limit before decoding, and a request spends at most `request_pixels` decoded pixels.
- The newest decoded pictures are kept in a cache bounded in pixels, since Label Studio asks again
  for a task each time someone opens it.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlparse

import httpx
import numpy as np

from cgc.annotate.labelstudio_client import LabelStudioError, connect_label_studio, redact_url, resolve_api_key
from cgc.annotate.labelstudio_defaults import API_KEY_ENV, DEFAULT_TIMEOUT, URL_ENV
from cgc.datasets.pictures import decode_rgb, encoded_size
from cgc.errors import InputError

CACHE_PIXELS = 200_000_000  # decoded pixels kept for pictures asked again (600 MB of RGB)
REQUEST_PIXELS = 100_000_000  # decoded pixels one /predict request may use (e.g. eight 12-megapixel photos)
PICTURE_BYTES = 64 * 2**20  # the largest download of one picture
MAX_REDIRECTS = 5
DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]  # (scheme, host, port), as browsers compare sites


def origin_of(url: str) -> Origin | None:
    """(scheme, lower-case host, port) of an http(s) URL; None for anything else, a URL with a user name or
    password included (neither Label Studio nor its pictures use one)."""
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError:
        return None
    if parsed.scheme not in DEFAULT_PORTS or not parsed.hostname or "@" in parsed.netloc:
        return None
    return parsed.scheme, parsed.hostname.lower(), port or DEFAULT_PORTS[parsed.scheme]


def allowed_host(text: str) -> tuple[str, int | None]:
    """An operator's `--allow-image-host`: HOST, HOST:PORT or a URL -> (host, port or None for any)."""
    parsed = urlparse(text if "://" in text else f"//{text}")
    try:
        port = parsed.port
    except ValueError:
        raise InputError(f"--allow-image-host {text!r}: not a host name, HOST:PORT or URL") from None
    if not parsed.hostname or "@" in parsed.netloc:
        raise InputError(f"--allow-image-host {text!r}: not a host name, HOST:PORT or URL")
    return parsed.hostname.lower(), port


@dataclass
class PixelBudget:
    """The decoded pixels one request may still use; `spend` refuses a picture that would go over."""

    left: int = REQUEST_PIXELS
    limit: int = field(init=False)

    def __post_init__(self) -> None:
        self.limit = self.left

    def spend(self, pixels: int, name: str) -> None:
        if pixels > self.left:
            raise InputError(f"the request's pictures exceed its budget of {self.limit} pixels; this one "
                             f"({pixels} pixels) is not predicted: send fewer tasks per request", name)
        self.left -= pixels


class TaskImages:
    """Fetches and decodes task pictures from the operator's Label Studio server (and allowed hosts only)."""

    def __init__(self, server: str | None = None, key: str | None = None, allowed_hosts: tuple[str, ...] = (),
                 cache_pixels: int = CACHE_PIXELS, transport: httpx.BaseTransport | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        server = (server or os.environ.get(URL_ENV) or "").strip().rstrip("/") or None
        self.server_origin = None if server is None else origin_of(server)
        if server is not None and self.server_origin is None:
            raise InputError(f"the Label Studio URL {redact_url(server)} is not an http(s) URL without a user name "
                             f"or password (expected e.g. http://localhost:8080)")
        self.server = server
        self.operator_key = resolve_api_key(key or os.environ.get(API_KEY_ENV))
        self.key = self.operator_key
        self.allowed = [allowed_host(host) for host in allowed_hosts]
        self.cache_pixels = cache_pixels
        self.transport = transport
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._headers: dict[str, str] | None = None
        self._http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)

    def accept_key(self, key: str | None) -> None:
        """A key from Label Studio's /setup: used for the operator's server only, and only if the operator gave
        none (a key the operator gave is never replaced by a request)."""
        if not key or self.operator_key or key == self.key:
            return
        self.key = resolve_api_key(key)
        self._headers = None
        self._cache.clear()

    def _server_headers(self) -> dict[str, str]:
        if self._headers is None:
            if not (self.server and self.key):
                self._headers = {}
            else:
                connection = connect_label_studio(self.server, self.key, transport=self.transport, check=False)
                self._headers = connection.auth_headers()
        return self._headers

    def url_of(self, reference: str) -> str:
        """The absolute URL of a task's image reference."""
        if urlparse(reference).scheme:
            return reference
        if not self.server:
            raise InputError(f"image {reference!r} is relative to the Label Studio server, whose URL is unknown: "
                             f"start cgc serve with --url (or set {URL_ENV})")
        return urljoin(self.server + "/", reference.lstrip("/"))

    def may_fetch(self, url: str) -> bool:
        """Whether `url` is on the operator's server or on a host the operator allows."""
        origin = origin_of(url)
        if origin is None:
            return False
        if origin == self.server_origin:
            return True
        return any(origin[1] == host and (port is None or origin[2] == port) for host, port in self.allowed)

    def rgb(self, reference: str, budget: PixelBudget | None = None) -> np.ndarray:
        """The task's picture as RGB uint8; an InputError naming the reference if it cannot (or may not) be had."""
        url = self.url_of(reference)
        shown = redact_url(url)
        if url in self._cache:
            picture = self._cache[url]
            if budget is not None:
                budget.spend(picture.shape[0] * picture.shape[1], shown)
            self._cache.move_to_end(url)
            return picture
        data = self._download(url, shown)
        name = urlparse(url).path.rsplit("/", 1)[-1] or shown
        width, height = encoded_size(data, name)
        if budget is not None:
            budget.spend(width * height, shown)
        picture = decode_rgb(data, name)
        self._remember(url, picture)
        return picture

    def _download(self, url: str, shown: str) -> bytes:
        """The bytes at `url`, following redirects only to allowed origins; at most PICTURE_BYTES of them."""
        for _ in range(MAX_REDIRECTS + 1):
            if not self.may_fetch(url):
                server = redact_url(self.server) if self.server else "(none given)"
                raise InputError(f"image {shown} is not on the Label Studio server {server} "
                                 f"nor on a host allowed with --allow-image-host: not fetched")
            same_server = origin_of(url) == self.server_origin
            try:
                headers = self._server_headers() if same_server else {}
                with self._http.stream("GET", url, headers=headers) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        shown = redact_url(url)
                        continue
                    if response.status_code != 200:
                        raise InputError(f"cannot fetch image {shown}: HTTP {response.status_code}")
                    return read_capped(response, shown)
            except LabelStudioError as exc:
                raise InputError(f"cannot fetch image {shown}: {exc}") from None
            except httpx.TimeoutException:
                raise InputError(f"cannot fetch image {shown}: no answer in time") from None
            except httpx.HTTPError:
                raise InputError(f"cannot fetch image {shown}: no connection") from None
        raise InputError(f"cannot fetch image {shown}: more than {MAX_REDIRECTS} redirects")

    def _remember(self, url: str, picture: np.ndarray) -> None:
        pixels = picture.shape[0] * picture.shape[1]
        if pixels > self.cache_pixels:
            return
        self._cache[url] = picture
        while sum(kept.shape[0] * kept.shape[1] for kept in self._cache.values()) > self.cache_pixels:
            self._cache.popitem(last=False)

    def close(self) -> None:
        self._http.close()


def read_capped(response: httpx.Response, shown: str) -> bytes:
    """A response's body, refused as soon as it (or its declared length) passes PICTURE_BYTES."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > PICTURE_BYTES:
        raise InputError(f"image {shown} is {int(declared)} bytes, more than {PICTURE_BYTES}: not fetched")
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > PICTURE_BYTES:
            raise InputError(f"image {shown} is more than {PICTURE_BYTES} bytes: not fetched")
        chunks.append(chunk)
    return b"".join(chunks)
