"""The fork server's children behave as the processes they stand for: the same output and exit
status as a fresh `parley` or `python -m uvicorn`, signals delivered for real, and a fresh process
where a child could not be one."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.forkserver import PARLEY, ForkedProcess, run_forked, start_forked
from tests.support.server import ROOT, ServerProcess

PASSWORD = "correct-horse-42"


def cli_env(database: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite+aiosqlite:///{database}", "LOG_LEVEL": "WARNING"}


def server_env(database: Path) -> dict[str, str]:
    return {**cli_env(database), "JWT_SECRET": "test-secret-test-secret-test-secret-0123"}


class FreshServer(ServerProcess):
    """The same server command, started as a process of its own."""

    def launch(self, command: list[str]) -> subprocess.Popen[bytes]:
        return self.popen(command)


@pytest.mark.parametrize("args", [("--help",), ("serve", "--workers", "0"), ("db", "upgrade")])
def test_a_forked_command_answers_as_the_console_script(tmp_path: Path, args: tuple[str, ...]) -> None:
    """Each in a directory of its own whose `.env` names the database, so both read it the same."""
    command, env = [PARLEY, *args], {"LOG_LEVEL": "WARNING"}
    forked = run_forked(command, env, directory_with_dotenv(tmp_path / "forked"), timeout=60)
    cwd = directory_with_dotenv(tmp_path / "fresh")
    fresh = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert (tmp_path / "forked" / "parley.db").exists() == (tmp_path / "fresh" / "parley.db").exists()


def directory_with_dotenv(path: Path) -> Path:
    path.mkdir()
    (path / ".env").write_text("DATABASE_URL=sqlite+aiosqlite:///./parley.db\n")
    return path


def test_a_forked_server_ends_by_the_signal_sent_as_a_fresh_one(tmp_path: Path) -> None:
    ended = {}
    for kind, how in ((ServerProcess, "terminate"), (FreshServer, "terminate"), (ServerProcess, "kill")):
        server = kind(server_env(tmp_path / f"{how}.db"), tmp_path / f"{kind.__name__}-{how}.log").start()
        assert isinstance(server.process, ForkedProcess) == (kind is ServerProcess)
        assert server.process is not None
        if how == "terminate":
            server.terminate()
        else:
            server.process.kill()
        ended[kind.__name__, how] = server.wait(timeout=15)
        assert not Path(f"/proc/{server.process.pid}").exists()
    assert ended == {
        ("ServerProcess", "terminate"): -signal.SIGTERM,
        ("FreshServer", "terminate"): -signal.SIGTERM,
        ("ServerProcess", "kill"): -signal.SIGKILL,
    }


def test_a_forked_server_that_cannot_start_exits_with_the_status_of_a_fresh_one(tmp_path: Path) -> None:
    failures = []
    for kind in (ServerProcess, FreshServer):
        server = kind(server_env(tmp_path / "x.db"), tmp_path / f"{kind.__name__}.log", "no_such_module:app")
        with pytest.raises(RuntimeError, match="server exited with") as failed:
            server.start(timeout=30)
        failures.append(str(failed.value).splitlines()[0])
        assert 'Could not import module "no_such_module"' in server.log()
    assert failures[0] == failures[1]


def test_a_child_takes_its_request_s_environment_and_directory(tmp_path: Path) -> None:
    """Two commands of one fork server, each with its own database from its own environment."""
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    assert run_forked([PARLEY, "db", "upgrade"], cli_env(first), tmp_path, timeout=60).returncode == 0
    assert not second.exists()
    created = run_forked(
        [PARLEY, "users", "create", "erin", "--password", PASSWORD], cli_env(second), tmp_path, timeout=60
    )
    assert created.returncode == 1
    assert "parley db upgrade" in created.stderr


def test_start_up_variables_a_child_cannot_take_get_a_fresh_process(tmp_path: Path) -> None:
    command = [PARLEY, "--help"]
    assert start_forked(command, {"PYTHONHASHSEED": "7"}, ROOT, tmp_path / "out") is None
    assert start_forked(command, {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}, ROOT, tmp_path / "out") is None
    assert start_forked(["/bin/true"], {}, ROOT, tmp_path / "out") is None
