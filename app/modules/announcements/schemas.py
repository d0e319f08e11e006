"""Bodies and payloads of announcements."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from app.core.types import UtcDateTime
from app.modules.announcements.models import BODY_MAX, TITLE_MAX, URL_MAX

METADATA_MAX_BYTES = 4096
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=URL_MAX, pattern=r"^https?://\S+$")]


class AnnouncementIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=TITLE_MAX, pattern=r"\S")]
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=BODY_MAX, pattern=r"\S")]
    url: Url | None = None
    image_url: Url | None = None
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.metadata is not None and len(msgspec.json.encode(self.metadata)) > METADATA_MAX_BYTES:
            raise ValueError(f"metadata: at most {METADATA_MAX_BYTES} bytes of JSON")


class AnnouncementOut(msgspec.Struct):
    id: str
    title: str
    body: str
    url: str | None
    image_url: str | None
    metadata: dict[str, Any]
    created_at: UtcDateTime


class AnnouncementList(msgspec.Struct):
    items: list[AnnouncementOut]
