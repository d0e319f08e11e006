"""Markdown of the registry's texts (descriptions) as safe HTML for the page.

CommonMark with tables, raw HTML off: a `<script>` in a description is shown as text, never run,
and links with a `javascript:`, `vbscript:`, `file:` or `data:` address are not made links.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from markupsafe import Markup

_RENDERER = MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown(text: str) -> Markup:
    """Paragraphs, lists, tables, code: for descriptions that may hold several sentences or blocks."""
    return Markup(_RENDERER.render(text))  # noqa: S704 - markdown-it escapes every text, raw HTML is off


def markdown_inline(text: str) -> Markup:
    """One line of inline Markdown (code, emphasis, links), for table cells and short notes."""
    return Markup(_RENDERER.renderInline(text))  # noqa: S704 - as above
