"""A `json` module for python-socketio/Engine.IO backed by msgspec (Structs encode natively)."""

from __future__ import annotations

from typing import Any

import msgspec


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")


_encoder = msgspec.json.Encoder(enc_hook=_enc_hook)
_decoder = msgspec.json.Decoder()


def dumps(obj: Any, **_kwargs: Any) -> str:
    return _encoder.encode(obj).decode()


def loads(data: str | bytes, **_kwargs: Any) -> Any:
    return _decoder.decode(data)
