"""The key files of asymmetric JWT algorithms are checked at start-up, so a bad key stops it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.config.parsers import SettingsError

KEY_TYPES: dict[str, tuple[type[Any], type[Any]]] = {
    "RS256": (rsa.RSAPublicKey, rsa.RSAPrivateKey),
    "ES256": (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey),
}


def check_key_file(name: str, path: str, algorithm: str, *, private: bool) -> None:
    """The file exists and holds a PEM key of the algorithm's kind, so a bad key stops start-up."""
    try:
        pem = Path(path).read_bytes()
    except OSError:
        raise SettingsError(f"{name}={path!r} is not a readable file") from None
    try:
        key: Any = (
            serialization.load_pem_private_key(pem, password=None)
            if private
            else serialization.load_pem_public_key(pem)
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        kind = "private" if private else "public"
        raise SettingsError(f"{name}={path!r} is not a PEM {kind} key") from None
    if not isinstance(key, KEY_TYPES[algorithm][1 if private else 0]):
        raise SettingsError(f"{name}={path!r} does not hold a key for JWT_ALGORITHM={algorithm}")
