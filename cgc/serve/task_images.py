"""The pictures of Label Studio tasks, fetched from the server with the project's credentials.

A task's image is a URL: absolute (`http://host/data/upload/3/ab12-x.jpg`) or relative to the
server (`/data/upload/3/ab12-x.jpg`). Relative ones are joined to the server's URL, which
`/setup` sends (`hostname`) or LABEL_STUDIO_URL gives. Requests to that server carry its key
(`access_token` from `/setup`, else LABEL_STUDIO_API_KEY), as the SDK sends it; other hosts get
no key. The newest decoded pictures are kept in a bounded cache, since Label Studio asks again
for a task each time someone opens it.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from urllib.parse import urljoin, urlparse

import httpx
import numpy as np

from cgc.annotate.labelstudio_client import LabelStudioError, connect_label_studio
from cgc.annotate.labelstudio_defaults import API_KEY_ENV, DEFAULT_TIMEOUT, URL_ENV
from cgc.datasets.pictures import decode_rgb
from cgc.errors import InputError

CACHE_PICTURES = 32


class TaskImages:
    """Fetches and decodes task pictures; `server` and `key` may change when Label Studio calls /setup."""

    def __init__(self, server: str | None = None, key: str | None = None, cache_size: int = CACHE_PICTURES,
                 transport: httpx.BaseTransport | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.cache_size = cache_size
        self.transport = transport
        self.timeout = timeout
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._http: httpx.Client | None = None
        self.server: str | None = None
        self.key: str | None = None
        self.connect(server or os.environ.get(URL_ENV), key or os.environ.get(API_KEY_ENV))

    def connect(self, server: str | None, key: str | None) -> None:
        """Use this server and key from now on (an unchanged pair keeps the connection and the cache)."""
        server = server.rstrip("/") if server else None
        if self._http is not None:
            if (server, key) == (self.server, self.key):
                return
            self._http.close()
        self.server, self.key = server, key
        self._headers: dict[str, str] | None = None
        self._cache.clear()
        self._http = httpx.Client(transport=self.transport, timeout=self.timeout, follow_redirects=True)

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
        if urlparse(reference).scheme in ("http", "https"):
            return reference
        if not self.server:
            raise InputError(f"image {reference!r} is relative to the Label Studio server, whose URL is unknown: "
                             f"connect the model in Label Studio (it sends it), or set {URL_ENV}")
        return urljoin(self.server + "/", reference.lstrip("/"))

    def rgb(self, reference: str) -> np.ndarray:
        """The task's picture as RGB uint8; an InputError naming the reference if it cannot be had."""
        url = self.url_of(reference)
        if url in self._cache:
            self._cache.move_to_end(url)
            return self._cache[url]
        same_server = self.server is not None and urlparse(url).netloc == urlparse(self.server).netloc
        try:
            headers = self._server_headers() if same_server else {}
            response = self._http.get(url, headers=headers)
        except (httpx.HTTPError, LabelStudioError) as exc:
            raise InputError(f"cannot fetch image {url}: {exc}") from None
        if response.status_code != 200:
            raise InputError(f"cannot fetch image {url}: HTTP {response.status_code}")
        picture = decode_rgb(response.content, urlparse(url).path.rsplit("/", 1)[-1] or url)
        self._cache[url] = picture
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return picture
