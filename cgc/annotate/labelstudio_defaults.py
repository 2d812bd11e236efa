"""Where cgc finds a Label Studio server, how long it waits for it, and the model server's credentials: plain
values, no HTTP library.

Kept apart from `labelstudio_client` so that the command line can state them in its options
without loading httpx and the SDK at every start.
"""

URL_ENV = "LABEL_STUDIO_URL"
API_KEY_ENV = "LABEL_STUDIO_API_KEY"
DEFAULT_TIMEOUT = 60.0  # seconds to wait for each answer, on top of the retries
SERVE_AUTH_ENV = "CGC_SERVE_AUTH"  # USER:PASSWORD that `cgc serve` requires and `annotate setup --connect-model` gives


def basic_credentials(text: str, option: str) -> tuple[str, str]:
    """USER:PASSWORD -> (user, password); an error that does not repeat the password otherwise."""
    from cgc.errors import InputError

    user, colon, password = text.partition(":")
    if not colon or not user or not password:
        raise InputError(f"{option} must be USER:PASSWORD, both non-empty")
    return user, password
