"""Where cgc finds a Label Studio server and how long it waits for it: plain values, no HTTP library.

Kept apart from `labelstudio_client` so that the command line can state them in its options
without loading httpx and the SDK at every start.
"""

URL_ENV = "LABEL_STUDIO_URL"
API_KEY_ENV = "LABEL_STUDIO_API_KEY"
DEFAULT_TIMEOUT = 60.0  # seconds to wait for each answer, on top of the retries
