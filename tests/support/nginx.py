"""nginx (Debian's package) in front of Parley nodes, configured from `deploy/nginx.conf`.

The deploy file is used as a user would: its example node addresses are replaced by the test's node
URLs and its `listen` by a free loopback port; a main configuration of the test's own puts the pid
file, logs and temporary files in a folder of the test and runs nginx in the foreground.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.backends import Backend, unavailable
from tests.support.server import ROOT, ParleyServe, free_port

NGINX = "/usr/sbin/nginx"
DEPLOY_CONF = ROOT / "deploy" / "nginx.conf"
EXAMPLE_NODES = ("10.0.0.11:8000", "10.0.0.12:8000")

MAIN_CONF = """\
daemon off;
user root;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/client-body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/parley.conf;
}}
"""


def require_nginx() -> None:
    if shutil.which(NGINX) is None and not Path(NGINX).exists():
        unavailable(f"{NGINX} is not installed (apt-get install nginx)", "nginx")


def site_config(nodes: list[str], port: int) -> str:
    """`deploy/nginx.conf` with the example nodes replaced by `nodes` (host:port) and its port."""
    text = DEPLOY_CONF.read_text()
    assert text.count("listen 80;") == 1
    text = text.replace("listen 80;", f"listen 127.0.0.1:{port};")
    for example, node in zip(EXAMPLE_NODES, nodes, strict=True):
        assert example in text
        text = text.replace(example, node)
    return text


class Nginx:
    def __init__(self, folder: Path, nodes: list[str]) -> None:
        require_nginx()
        self.folder = folder
        self.port = free_port()
        (folder / "parley.conf").write_text(site_config(nodes, self.port))
        (folder / "nginx.conf").write_text(MAIN_CONF.format(folder=folder))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> Nginx:
        command = [
            NGINX,
            "-p",
            str(self.folder),
            "-c",
            str(self.folder / "nginx.conf"),
            "-e",
            str(self.folder / "error.log"),
        ]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:  # one for every try, as in `wait_until_healthy`
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"nginx exited with {self.process.returncode}:\n{self.error_log()}")
                try:
                    client.get(f"{self.url}/health")
                except httpx.HTTPError:
                    time.sleep(0.05)
                else:
                    return self
        raise RuntimeError(f"nginx did not answer within {timeout}s:\n{self.error_log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


AUTH_ATTEMPTS = 3
"""RATE_LIMIT_AUTH of the shared deployment: login/register attempts per client address."""
DEPLOYMENT_ENV = {
    "RATE_LIMIT_CHAT": "1000/1",
    "RATE_LIMIT_DEFAULT": "1000/1",
    "RATE_LIMIT_AUTH": f"{AUTH_ATTEMPTS}/600",
    "TRUSTED_PROXIES": "127.0.0.1",
    "DATABASE_MAX_CONNECTIONS": "8",
}


def from_address(address: str, base_url: str) -> httpx.AsyncClient:
    """A client whose connections come from `address` (any of 127.0.0.0/8 is this machine)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=10)


@dataclass(frozen=True)
class Deployment:
    nginx: Nginx
    nodes: list[ParleyServe]
    """Node `a` (one process) and node `b` (`--workers 2`)."""


@contextlib.contextmanager
def two_nodes_behind_nginx(backend: Backend, folder: Path, **env: str) -> Iterator[Deployment]:
    """Node `a` and node `b` (`--workers 2`) with `env`, behind nginx configured from the deploy file."""
    require_nginx()
    nodes = [
        ParleyServe(backend.env(**env, NODE_NAME="a"), folder / "a.log"),
        ParleyServe(backend.env(**env, NODE_NAME="b"), folder / "b.log", "--workers", "2"),
    ]
    proxy = Nginx(folder, [f"127.0.0.1:{node.port}" for node in nodes])
    try:
        for node in nodes:
            node.start(timeout=90)
        yield Deployment(proxy.start(), nodes)
    finally:
        proxy.stop()
        for node in nodes:
            node.stop()
