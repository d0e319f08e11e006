"""`parley docs spec|types` without a database or Redis, and the official tools on their output.

The node checks need `.ci/spec/node_modules` (`npm ci --prefix .ci/spec`); without them they are
skipped with the reason, except with CI=true, where `.ci/run` installs them first and a missing
tool fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from tests.support.backends import IN_CI
from tests.support.server import ROOT

SPEC_TOOLS = ROOT / ".ci" / "spec"
UNREACHABLE = {
    "DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:9/nothing",
    "REDIS_URL": "redis://127.0.0.1:9/0",
    "PUBLIC_URL": "https://chat.example.org",
    "JWT_SECRET": "test-secret-test-secret-test-secret-0123",
}


def require_node_tools() -> str:
    node = shutil.which("node")
    missing = []
    if node is None:
        missing.append("node")
    if not (SPEC_TOOLS / "node_modules" / "@asyncapi" / "parser").is_dir():
        missing.append(".ci/spec/node_modules (run `npm ci --prefix .ci/spec`)")
    if missing:
        reason = f"spec tools missing: {', '.join(missing)}"
        if IN_CI:
            pytest.fail(f"CI=true requires them: {reason}", pytrace=False)
        pytest.skip(reason)
    assert node is not None
    return node


def run_cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), env=UNREACHABLE, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("docs")
    spec, types = folder / "asyncapi.json", folder / "parley.d.ts"
    run_cli("docs", "spec", "--output", str(spec))
    run_cli("docs", "types", "--output", str(types))
    return spec, types


def run_node(node: str, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [node, str(SPEC_TOOLS / script), *args],
        cwd=SPEC_TOOLS,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def node_check(node: str, script: str, *args: str) -> str:
    result = run_node(node, script, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_cli_writes_the_spec_without_database_or_redis(written: tuple[Path, Path]) -> None:
    spec = json.loads(written[0].read_text())
    assert spec["asyncapi"] == "2.6.0"
    assert spec["servers"]["parley"]["url"] == "wss://chat.example.org"
    assert "room:join" in spec["channels"]
    assert "export interface ClientToServerEvents {" in written[1].read_text()


def test_cli_prints_the_spec_without_output() -> None:
    assert json.loads(run_cli("docs", "spec"))["asyncapi"] == "2.6.0"


def test_cli_refuses_bad_configuration() -> None:
    result = CliRunner().invoke(main, ["docs", "spec"], env={**UNREACHABLE, "PORT": "nope"})
    assert result.exit_code != 0
    assert "PORT" in result.output


def test_official_parser_accepts_the_spec(written: tuple[Path, Path]) -> None:
    node = require_node_tools()
    output = node_check(node, "validate.mjs", str(written[0]))
    assert "valid AsyncAPI 2.6.0" in output
    assert ", 0 errors, 0 warnings," in output
    assert "warning " not in output


def test_official_parser_warnings_fail_the_check(written: tuple[Path, Path], tmp_path: Path) -> None:
    """A document the parser only warns about (no contact) is refused too."""
    node = require_node_tools()
    spec = json.loads(written[0].read_text())
    del spec["info"]["contact"]
    warned = tmp_path / "warned.json"
    warned.write_text(json.dumps(spec))
    result = run_node(node, "validate.mjs", str(warned))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "warning asyncapi-info-contact" in result.stdout
    assert "1 warning(s)" in result.stderr


def test_official_parser_rejects_a_broken_spec(written: tuple[Path, Path], tmp_path: Path) -> None:
    """The check can fail: a channel pointing at a missing message is an error."""
    node = require_node_tools()
    spec = json.loads(written[0].read_text())
    spec["channels"]["room:join"]["publish"]["message"] = {"$ref": "#/components/messages/missing"}
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(spec))
    result = run_node(node, "validate.mjs", str(broken))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "not valid AsyncAPI" in result.stderr


def test_modelina_models_compile_with_tsc_strict(written: tuple[Path, Path], tmp_path: Path) -> None:
    node = require_node_tools()
    output = node_check(node, "models.mjs", str(written[0]), str(tmp_path / "models"))
    assert "compile with tsc --strict" in output
    spec = json.loads(written[0].read_text())
    client_events = [name for name, channel in spec["channels"].items() if "publish" in channel]
    models = {path.stem for path in (tmp_path / "models").glob("*.ts")}
    for name in client_events:
        ack = "".join(part[:1].upper() + part[1:] for part in name.replace(":", "_").split("_"))
        assert {f"{ack}Ack", f"{ack}AckOk", f"{ack}AckError", f"{ack}ErrorCode"} <= models, name
    assert f"ack models ({len(client_events)}):" in output
    assert not any(model.startswith("Anonymous") for model in models)


def test_modelina_check_refuses_an_anonymous_model(written: tuple[Path, Path], tmp_path: Path) -> None:
    """The check can fail: an untitled inline enum would become `AnonymousSchema_N`."""
    node = require_node_tools()
    spec = json.loads(written[0].read_text())
    reasons = spec["components"]["schemas"]["ForceLogoutReason"]["enum"]
    spec["components"]["schemas"]["ForceLogout"]["properties"]["reason"] = {"enum": reasons}
    broken = tmp_path / "anonymous.json"
    broken.write_text(json.dumps(spec))
    result = run_node(node, "models.mjs", str(broken), str(tmp_path / "models"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "anonymous models: AnonymousSchema" in result.stderr


def test_client_types_compile_with_socket_io_generics(written: tuple[Path, Path]) -> None:
    node = require_node_tools()
    output = node_check(node, "client-types.mjs", str(written[1]))
    assert "compiles with tsc --strict" in output


def test_client_types_check_rejects_an_unknown_type(written: tuple[Path, Path], tmp_path: Path) -> None:
    """The check can fail: a declaration naming a type that does not exist."""
    node = require_node_tools()
    broken = tmp_path / "broken.d.ts"
    broken.write_text(written[1].read_text() + "\nexport type Broken = MissingType;\n")
    result = run_node(node, "client-types.mjs", str(broken))
    assert result.returncode == 1
    assert "MissingType" in result.stdout


def test_an_event_without_payload_passes_every_tool(tmp_path: Path) -> None:
    """`game:boom` of the tests' probes takes no payload: its message has none, and the parser,
    modelina and tsc accept the documents."""
    node = require_node_tools()
    spec, types = tmp_path / "asyncapi.json", tmp_path / "parley.d.ts"
    probes = {**UNREACHABLE, "PARLEY_MODULES": "tests.support.game:probes_module"}
    for command, output in (("spec", spec), ("types", types)):
        result = CliRunner().invoke(main, ["docs", command, "--output", str(output)], env=probes)
        assert result.exit_code == 0, result.output
    message = json.loads(spec.read_text())["components"]["messages"]["client.game.boom"]
    assert "payload" not in message
    assert "examples" not in message
    assert '"game:boom": ParleyEmitBare<ParleyAck<Done, ' in types.read_text()
    assert "valid AsyncAPI 2.6.0" in node_check(node, "validate.mjs", str(spec))
    assert "compile with tsc --strict" in node_check(node, "models.mjs", str(spec), str(tmp_path / "models"))
    assert "compiles with tsc --strict" in node_check(node, "client-types.mjs", str(types))
