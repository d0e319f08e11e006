"""RFC 6455 conformance of Parley's websocket layer, checked by Autobahn|Testsuite's fuzzing client.

`wstest -m fuzzingclient` (installed by `install-autobahn.sh` into .ci/autobahn; Python 2.7 only)
drives an echo app (`echo.py`) served as `parley serve` serves Parley: uvicorn with
`FrameWritingProtocol`. The cases that apply to a server: framing (1.*), pings and pongs (2.*),
reserved bits (3.*), opcodes (4.*), fragmentation (5.*), UTF-8 (6.*), closing (7.*), automatic
fragmentation (10.*); with permessage-deflate on (`SOCKET_WS_COMPRESSION=true`), compression:
12.1.1-6 and 13.1.1-6 (1,000 messages of 16 to 512 bytes each, which the server compresses in its
one configuration; the other 12.* and 13.* cases repeat those with larger messages and other client
window sizes, ten minutes more on this machine), and again every case that the setting could change
for a client that does not ask for compression (all but opcodes, 4.*, and UTF-8, 6.*: the plain run
covers those, and they were about half of this run's time; 3.* stays, since RSV1 marks a compressed
message). Limits and performance (9.*) measure speed, not conformance.

A case passes when Autobahn calls its behaviour OK, NON-STRICT (allowed, not the strictest answer)
or INFORMATIONAL; every other outcome is listed in the failure. Without Python 2.7 the test is
skipped, except under CI (`CI=true`), where `.ci/run` installs it.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ROOT, ServerProcess, running

pytestmark = pytest.mark.e2e

AUTOBAHN = ROOT / ".ci" / "autobahn"
INSTALL = "tests/e2e/conformance/websocket/install-autobahn.sh"
CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"]
COMPRESSION_CASES = [
    *(group for group in CASES if group not in {"4.*", "6.*"}),
    *(f"{group}.1.{case}" for group in (12, 13) for case in range(1, 7)),
]
EXPECTED_COUNTS = {False: 247, True: 92 + 12}
"""How many cases each run holds: fewer means Autobahn skipped some."""
ECHO_APP = "tests.e2e.conformance.websocket.echo:create_echo"
PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}
PASSING_CLOSE = {"OK", "INFORMATIONAL"}


def wstest() -> list[str]:
    """The command that runs Autobahn's `wstest` from its --prefix install."""
    python = AUTOBAHN / "python"
    if not python.exists():
        if os.environ.get("CI"):
            pytest.fail(
                "Autobahn|Testsuite is not installed: tests/e2e/conformance/websocket/install-autobahn.sh"
            )
        pytest.skip(
            "Autobahn|Testsuite needs Python 2.7: run tests/e2e/conformance/websocket/install-autobahn.sh"
        )
    site = AUTOBAHN / "lib" / "python2.7" / "site-packages"
    launch = (
        f"import site, sys; site.addsitedir({str(site)!r}); sys.argv[0] = 'wstest'; "
        "from autobahntestsuite.wstest import run; run()"
    )
    return [python.read_text().strip(), "-W", "ignore", "-c", launch]


def fuzz(server: ServerProcess, cases: list[str], outdir: Path) -> dict[str, dict[str, Any]]:
    """Run the fuzzing client against `server`; each case's outcome, by case id."""
    spec = {
        "outdir": str(outdir),
        "servers": [{"agent": "parley", "url": server.url.replace("http", "ws")}],
        "cases": cases,
        "exclude-cases": [],
        "exclude-agent-cases": {},
    }
    spec_path = outdir.parent / "fuzzingclient.json"
    spec_path.write_text(json.dumps(spec))
    run = subprocess.run(
        [*wstest(), "-m", "fuzzingclient", "-s", str(spec_path)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    index = outdir / "index.json"
    assert run.returncode == 0, f"wstest failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}"
    assert index.exists(), f"wstest wrote no report:\n{run.stdout[-2000:]}"
    results: dict[str, dict[str, Any]] = json.loads(index.read_text())["parley"]
    return results


def passed(outcome: dict[str, Any]) -> bool:
    return outcome["behavior"] in PASSING and outcome["behaviorClose"] in PASSING_CLOSE


@pytest.mark.timeout(300)
@pytest.mark.parametrize("compression", [False, True], ids=["plain", "permessage-deflate"])
def test_autobahn_fuzzing_client_passes_every_case(
    tmp_path: Path, compression: bool, record_property: Callable[[str, object], None]
) -> None:
    """Every case passes; the counts by outcome are recorded as the test's `outcomes` property."""
    wstest()  # skips before a server starts if there is no wstest to run
    env = {"SOCKET_WS_COMPRESSION": "true" if compression else "false"}
    server = ServerProcess(env, tmp_path / "server.log", factory=ECHO_APP)
    with running([server]):
        results = fuzz(server, COMPRESSION_CASES if compression else CASES, tmp_path / "reports")

    record_property(
        "outcomes", dict(collections.Counter(outcome["behavior"] for outcome in results.values()))
    )
    failed = [
        f"  {case}: {describe(outcome)}" for case, outcome in sorted(results.items()) if not passed(outcome)
    ]
    assert not failed, f"cases failed (reports in {tmp_path / 'reports'}):\n" + "\n".join(failed)
    assert len(results) == EXPECTED_COUNTS[compression]


def describe(outcome: dict[str, Any]) -> str:
    return f"{outcome['behavior']}/{outcome['behaviorClose']}, closed with {outcome['remoteCloseCode']}"
