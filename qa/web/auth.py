"""API keys: who may write (and, if the config says so, read).

Keys come from the QA_API_KEYS environment variable (comma-separated) and from the
key file named in config.yaml (one per line). They are compared in constant time
and never logged.
"""

from __future__ import annotations

import hmac
import os

from flask import request

from qa.config import Config
from qa.errors import ConfigError
from qa.web.errors import ApiError

KEYS_VARIABLE = "QA_API_KEYS"


def load_api_keys(config: Config) -> tuple[bytes, ...]:
    """Every configured key; a key file that cannot be read is a config error."""
    keys = [k.strip() for k in os.environ.get(KEYS_VARIABLE, "").split(",")]
    path = config.server.api_key_file
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                keys += [line.strip() for line in handle if not line.lstrip().startswith("#")]
        except OSError as exc:
            raise ConfigError(f"cannot read the API key file {path}: "
                              f"{exc.strerror or exc}") from None
    return tuple(k.encode("utf-8") for k in dict.fromkeys(keys) if k)


def require_key(keys: tuple[bytes, ...]) -> None:
    """Raise the API's 403/401 unless the request carries one of `keys`."""
    if not keys:
        raise ApiError(403, "writes_disabled",
                       "no API key is configured, so this route is off; set QA_API_KEYS "
                       "(comma-separated keys) or server.api_key_file in config.yaml and "
                       "restart the server")
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(401, "missing_key",
                       "send the key as an `Authorization: Bearer <key>` header")
    candidate = given.strip().encode("utf-8")
    # Compare with every key, so the time taken does not tell which one nearly matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key)
    if not matched:
        raise ApiError(401, "invalid_key", "the API key is not valid")
