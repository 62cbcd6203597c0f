"""API-key check for the endpoints that change state.

The key is read on each request from the environment variable QT_API_KEY, or else from the
file named by QT_API_KEY_FILE, so a rotated key takes effect without a restart. The key is
never logged.
"""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Header, HTTPException, status

logger = logging.getLogger(__name__)

API_KEY_ENV = "QT_API_KEY"
API_KEY_FILE_ENV = "QT_API_KEY_FILE"


def configured_api_key() -> str | None:
    """Return the configured API key, or None when neither variable provides one."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    if key:
        return key
    path = os.environ.get(API_KEY_FILE_ENV, "").strip()
    if not path:
        return None
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        logger.error("The API key file named by %s cannot be read: %s", API_KEY_FILE_ENV, exc)
        return None
    return key or None


def require_api_key(
    x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
) -> None:
    """Reject the request unless header X-API-Key matches the configured key."""
    expected = configured_api_key()
    if expected is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"no API key is configured, so changes are disabled. Set {API_KEY_ENV} or point "
            f"{API_KEY_FILE_ENV} at a file containing the key, then retry the request",
        )
    if x_api_key is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send it in the X-API-Key header",
            headers={"WWW-Authenticate": "X-API-Key"},
        )
    if not hmac.compare_digest(x_api_key.encode("utf-8"), expected.encode("utf-8")):
        logger.warning("Rejected a request with an invalid API key.")
        raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid API key")


ApiKey = Depends(require_api_key)
