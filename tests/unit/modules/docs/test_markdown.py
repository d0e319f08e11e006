"""Descriptions are Markdown rendered with raw HTML off: formatting works, injection does not."""

from __future__ import annotations

import pytest

from app.modules.docs.markdown import markdown, markdown_inline


def test_markdown_formats_code_emphasis_links_and_tables() -> None:
    html = markdown(
        "Send `chat:send` **once**; see [the docs](https://example.org/x).\n\n| a |\n|---|\n| 1 |"
    )
    assert "<code>chat:send</code>" in html
    assert "<strong>once</strong>" in html
    assert '<a href="https://example.org/x">the docs</a>' in html
    assert "<td>1</td>" in html


@pytest.mark.parametrize(
    "attack",
    [
        "<script>window.injected = true</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        "<style>body{display:none}</style>",
        "<iframe src=//example.org></iframe>",
    ],
)
def test_raw_html_is_shown_as_text(attack: str) -> None:
    for render in (markdown, markdown_inline):
        html = render(f"before {attack} after")
        assert "<" + attack[1:] not in html
        assert attack.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;") in html


@pytest.mark.parametrize("address", ["javascript:alert(1)", "vbscript:msgbox(1)", "data:text/html,<b>x</b>"])
def test_links_to_script_addresses_are_not_links(address: str) -> None:
    html = markdown(f"[click]({address})")
    assert "<a " not in html
    assert "href" not in html
