"""The suite spread over pytest-xdist workers by work unit (`shared_work` in tests/conftest.py).

pytest-xdist's own `--dist loadgroup` finds a test's group in a suffix it appends to the test's node
id, which pytest 9 no longer lets a plugin change. Here each worker writes the unit of every test it
collected into the run's folder before it reports its collection, and the scheduler, which runs once
every worker has reported, groups the node ids by those units. A test of no unit is a unit alone.
"""

from __future__ import annotations

import json

from xdist.scheduler import LoadScopeScheduling

from tests.support.backends import RUN_FOLDER


def record_units(units: dict[str, str], worker: str) -> None:
    """Write a worker's units whole (renamed into place), so the scheduler never reads half a file."""
    RUN_FOLDER.mkdir(exist_ok=True)
    partial = RUN_FOLDER / f"units-{worker}.partial"
    partial.write_text(json.dumps(units))
    partial.replace(RUN_FOLDER / f"units-{worker}.json")


class SharedWorkScheduling(LoadScopeScheduling):
    """LoadScopeScheduling whose scope of a test is its recorded unit: a unit runs in one worker, in
    collection order, and the largest units are handed out first."""

    _units: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self._units is None:
            # every worker collected the same tests (pytest-xdist checks), so any worker's file will do
            recorded = sorted(RUN_FOLDER.glob("units-*.json"))
            self._units = json.loads(recorded[0].read_text()) if recorded else {}
        return self._units.get(nodeid, nodeid)
