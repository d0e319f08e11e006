"""PARLEY_MODULES: entry-point names of the `parley.modules` group and import paths, each refused in
one line naming the setting when it designates no module.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.module import Module, ModuleError
from app.core.module_loader import load_modules
from tests.support import module_faults

FAULTS = module_faults.__name__

PLUGIN = """
from app.core.module import Module

plugin_module = Module(name="plugin")
"""


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A distribution on sys.path, as pip installs one: its code and an entry point named `plugin`."""
    (tmp_path / "parley_plugin.py").write_text(PLUGIN)
    dist_info = tmp_path / "parley_plugin-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: parley-plugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[parley.modules]\nplugin = parley_plugin:plugin_module\nbroken = parley_plugin:missing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_an_entry_point_is_loaded_by_its_name(installed_plugin: Path) -> None:
    (plugin,) = load_modules(["plugin"])
    assert isinstance(plugin, Module)
    assert plugin.name == "plugin"


def test_import_paths_name_an_attribute_or_the_only_module_of_a_python_module() -> None:
    assert load_modules([f"{FAULTS}:lonely"]) == (module_faults.lonely,)
    only = load_modules(["app.modules.health.module"])
    assert [module.name for module in only] == ["health"]


def test_modules_come_in_the_order_named(installed_plugin: Path) -> None:
    loaded = load_modules([f"{FAULTS}:egg", "plugin", f"{FAULTS}:chicken"])
    assert [module.name for module in loaded] == ["egg", "plugin", "chicken"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("nowhere", "'nowhere' is no installed entry point of parley.modules (installed: broken, "),
        ("nowhere", "plugin) and cannot be imported: No module named 'nowhere'"),
        (f"{FAULTS}:umpire", f"{FAULTS} has no attribute 'umpire'"),
        (f"{FAULTS}:Referee", f"'{FAULTS}:Referee' is a type, not an app.core.module.Module"),
        (FAULTS, f"'{FAULTS}' holds 3 Parley modules; name one as {FAULTS}:attribute"),
        ("tests.support", "'tests.support' holds 0 Parley modules"),
        (
            "broken",
            "entry point 'broken' cannot be loaded: module 'parley_plugin' has no attribute 'missing'",
        ),
    ],
)
def test_a_name_that_designates_no_module_is_refused_in_one_line(
    installed_plugin: Path, name: str, reason: str
) -> None:
    with pytest.raises(ModuleError) as refused:
        load_modules(["plugin", name])
    message = str(refused.value)
    assert message.startswith("PARLEY_MODULES: ")
    assert reason in message
    assert "\n" not in message
