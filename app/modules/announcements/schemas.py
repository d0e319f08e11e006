"""Bodies and payloads of announcements."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from app.core import text as rules
from app.core.errors import AppError
from app.core.types import UtcDateTime
from app.modules.announcements.models import BODY_MAX, TITLE_MAX, URL_MAX

METADATA_MAX_BYTES = 4096
Url = Annotated[str, rules.text(rules.URL, max_length=URL_MAX)]


class AnnouncementIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, rules.text(rules.TRIMMED, max_length=TITLE_MAX)]
    body: Annotated[str, rules.text(rules.MULTI_LINE, max_length=BODY_MAX)]
    url: Url | None = None
    image_url: Url | None = None
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.metadata is None:
            return
        if len(msgspec.json.encode(self.metadata)) > METADATA_MAX_BYTES:
            raise ValueError(f"metadata: at most {METADATA_MAX_BYTES} bytes of JSON")
        try:
            rules.check_document(self.metadata, "metadata")
        except AppError as error:
            raise ValueError(error.message) from None


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
