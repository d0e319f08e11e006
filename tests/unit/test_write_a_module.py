"""README "Write a module" shows the example module's own code (examples/game): every block it cuts
from a file is in that file, word for word, and it walks through every part of the module."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "game"
CUT = re.compile(r"<!-- from (?P<path>\S+) -->\n```\w+\n(?P<code>.*?)```", re.DOTALL)
NOT_WALKED = {"__init__.py", "scores.py"}
"""The package's marker and its two queries, which the walk-through leaves to the reader."""


def section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## Write a module\n")
    return readme[start : readme.index("\n## ", start + 1)]


def cuts() -> list[tuple[str, str]]:
    return [(match["path"], match["code"]) for match in CUT.finditer(section())]


def test_every_block_is_the_example_code_word_for_word() -> None:
    found = cuts()
    assert len(found) >= 8
    for path, code in found:
        assert path.startswith("examples/game/"), path
        assert code in (ROOT / path).read_text(), f"README block no longer matches {path}:\n{code}"


def test_the_walk_through_covers_every_part_of_the_module() -> None:
    cited = {path for path, _ in cuts()}
    parts = {
        str(file.relative_to(ROOT))
        for file in (EXAMPLE / "parley_game").rglob("*.py")
        if file.name not in NOT_WALKED
    }
    assert parts <= cited, parts - cited
    assert "examples/game/pyproject.toml" in cited


def test_the_example_names_its_module_in_the_entry_point_group_the_loader_reads() -> None:
    from app.core.module_loader import ENTRY_POINT_GROUP

    assert f'[project.entry-points."{ENTRY_POINT_GROUP}"]' in (EXAMPLE / "pyproject.toml").read_text()
