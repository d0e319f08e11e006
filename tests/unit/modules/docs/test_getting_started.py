"""The getting-started steps: every program has every step, and the README shows the current code."""

from __future__ import annotations

from app.modules.docs.getting_started import (
    PROGRAMS,
    README_END,
    README_START,
    STEPS,
    readme_section,
    regions,
)
from tests.support.server import ROOT

REGENERATE = (
    ".venv/bin/python -c 'from pathlib import Path; from app.modules.docs.getting_started import "
    'replace_readme_section as r; p = Path("README.md"); p.write_text(r(p.read_text()))\''
)


def test_every_program_shows_every_step() -> None:
    names = [step.name for step in STEPS]
    for program in PROGRAMS:
        assert sorted(regions(program.file)) == sorted(names), program.file
        assert all(code.strip() for code in regions(program.file).values()), program.file


def test_regions_are_dedented_code_without_markers() -> None:
    code = regions("python-socketio.py")["login"]
    assert code.startswith("tokens = await api(")
    assert "[step" not in code
    assert "[end]" not in code


def test_the_readme_shows_the_generated_section() -> None:
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(README_START), readme.index(README_END) + len(README_END)
    assert readme[start:end] == readme_section(), f"regenerate it: {REGENERATE}"
    assert regions("socketio-client.mjs")["recover"] in readme
