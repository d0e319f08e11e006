"""Settings: one table of variables, `.env` support, and start-up refused on any bad value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.config.settings import DEFAULT_JWT_SECRET, VARIABLES, Settings, SettingsError, env_example
from tests.support.server import ROOT

SECRET = "a-private-secret-that-is-long-enough-0123"

SPEC_VARIABLES = {
    "APP_ENV", "HOST", "PORT", "DATABASE_URL", "REDIS_URL", "JWT_ALGORITHM", "JWT_SECRET",
    "JWT_PRIVATE_KEY_FILE", "JWT_PUBLIC_KEY_FILE", "JWT_ISSUER", "JWT_AUDIENCE", "ACCESS_TOKEN_TTL",
    "REFRESH_TOKEN_TTL", "LOGIN_POLICY", "SOCKET_DEFAULT_ROOMS", "SOCKET_CORS_ORIGINS",
    "SOCKET_MAX_PAYLOAD_BYTES", "SOCKET_PING_INTERVAL", "SOCKET_PING_TIMEOUT", "PRESENCE_TTL",
    "TYPING_TTL", "WS_DOCS_ENABLED", "LOG_LEVEL", "LOG_FORMAT",
}  # fmt: skip


def settings(**env: str) -> Settings:
    return Settings.from_env(env, env_file=None)


def write_pem(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, *, private: bool) -> str:
    if private:
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    else:
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    path.write_bytes(pem)
    return str(path)


def test_committed_env_example_is_generated_from_the_variables() -> None:
    assert (ROOT / ".env.example").read_text() == env_example()


def test_env_example_lists_every_spec_variable_with_default_and_comment() -> None:
    text = env_example()
    names = {variable.name for variable in VARIABLES}
    assert names >= SPEC_VARIABLES
    assert any(name.startswith("RATE_LIMIT_") for name in names)
    for variable in VARIABLES:
        block = re.search(rf"^# (.+)\n{variable.name}=(.*)$", text, re.MULTILINE)
        assert block is not None, variable.name
        assert block.group(1).strip() == variable.comment
        assert block.group(2) == (variable.default or "")


def test_defaults_give_the_embedded_setup() -> None:
    current = settings()
    assert current.app_env == "local"
    assert current.port == 8000
    assert current.is_sqlite
    assert current.redis_url is None
    assert current.jwt.algorithm == "HS256"
    assert current.login_policy == "single_per_device"
    assert current.socket.default_rooms == ("user:{userId}", "broadcast:all")
    assert current.rate_limits.auth.capacity == 20
    assert current.log_format == "text"


def test_dotenv_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=9123\nLOGIN_POLICY=multi\nLOG_FORMAT=json\n")
    current = Settings.from_env({"LOG_FORMAT": "text"}, env_file=env_file)
    assert current.port == 9123
    assert current.login_policy == "multi"
    assert current.log_format == "text"


def test_an_unknown_name_in_the_dotenv_file_stops_start_up(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=9000\nLOGIN_POLCY=multi\n")
    with pytest.raises(SettingsError, match="LOGIN_POLCY"):
        Settings.from_env({}, env_file=env_file)


def test_a_missing_dotenv_file_is_fine(tmp_path: Path) -> None:
    assert Settings.from_env({}, env_file=tmp_path / "absent.env").port == 8000


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("APP_ENV", "production"),
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("ACCESS_TOKEN_TTL", "0"),
        ("REFRESH_TOKEN_TTL", "-5"),
        ("JWT_ALGORITHM", "none"),
        ("LOGIN_POLICY", "sometimes"),
        ("SOCKET_PING_INTERVAL", "0"),
        ("PRESENCE_TTL", "soon"),
        ("RATE_LIMIT_CHAT", "ten"),
        ("RATE_LIMIT_AUTH", "5/0"),
        ("RATE_LIMIT_ENABLED", "maybe"),
        ("WS_DOCS_ENABLED", "perhaps"),
        ("LOG_LEVEL", "LOUD"),
        ("LOG_FORMAT", "xml"),
        ("DATABASE_URL", "mysql://localhost/parley"),
        ("REDIS_URL", "http://localhost:6379"),
        ("SOCKET_MAX_PAYLOAD_BYTES", "100"),
        ("SOCKET_CONNECT_TIMEOUT", "0"),
        ("SOCKET_MAX_BACKLOG_BYTES", "0"),
        ("SOCKET_MAX_BACKLOG_PACKETS", "many"),
        ("SOCKET_WS_COMPRESSION", "sometimes"),
        ("JWT_SECRET", "short"),
        ("WORKERS", "0"),
        ("WORKERS", "four"),
        ("WORKERS", "65"),
        ("NODE_NAME", "Node-A"),
        ("NODE_NAME", "1a"),
        ("NODE_NAME", "a.b"),
        ("TRUSTED_PROXIES", "nginx.internal"),
        ("TRUSTED_PROXIES", "10.0.0.1/8"),
        ("TRUSTED_PROXIES", "127.0.0.1,300.1.1.1"),
        ("SHUTDOWN_GRACE", "0"),
        ("METRICS_TOKEN", "too-short"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        settings(**{name: value})


@pytest.mark.parametrize("secret", [DEFAULT_JWT_SECRET, ""])
def test_prod_refuses_the_default_or_an_empty_secret(secret: str) -> None:
    with pytest.raises(SettingsError, match="JWT_SECRET"):
        settings(APP_ENV="prod", JWT_SECRET=secret)


def test_prod_starts_with_a_private_secret() -> None:
    assert settings(APP_ENV="prod", JWT_SECRET=SECRET).app_env == "prod"


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_asymmetric_algorithms_need_a_public_key_file(algorithm: str) -> None:
    with pytest.raises(SettingsError, match="JWT_PUBLIC_KEY_FILE"):
        settings(JWT_ALGORITHM=algorithm, APP_ENV="prod", JWT_SECRET="")


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="JWT_PUBLIC_KEY_FILE"):
        settings(JWT_ALGORITHM="RS256", JWT_PUBLIC_KEY_FILE=str(tmp_path / "absent.pem"))


def test_a_key_file_that_is_not_pem_is_named(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(SettingsError, match="JWT_PUBLIC_KEY_FILE"):
        settings(JWT_ALGORITHM="RS256", JWT_PUBLIC_KEY_FILE=str(junk))


def test_a_key_of_the_wrong_kind_is_refused(tmp_path: Path) -> None:
    rsa_public = write_pem(tmp_path / "rsa.pem", rsa.generate_private_key(65537, 2048), private=False)
    with pytest.raises(SettingsError, match=r"JWT_PUBLIC_KEY_FILE.*ES256"):
        settings(JWT_ALGORITHM="ES256", JWT_PUBLIC_KEY_FILE=rsa_public)


def test_a_private_key_file_must_hold_a_private_key(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = write_pem(tmp_path / "public.pem", key, private=False)
    with pytest.raises(SettingsError, match="JWT_PRIVATE_KEY_FILE"):
        settings(JWT_ALGORITHM="ES256", JWT_PUBLIC_KEY_FILE=public, JWT_PRIVATE_KEY_FILE=public)


def test_prod_with_rs256_key_files_starts_without_a_secret(tmp_path: Path) -> None:
    key = rsa.generate_private_key(65537, 2048)
    current = settings(
        APP_ENV="prod",
        JWT_SECRET="",
        JWT_ALGORITHM="RS256",
        JWT_PUBLIC_KEY_FILE=write_pem(tmp_path / "public.pem", key, private=False),
        JWT_PRIVATE_KEY_FILE=write_pem(tmp_path / "private.pem", key, private=True),
    )
    assert current.jwt.algorithm == "RS256"


@pytest.mark.parametrize(
    ("app_env", "flag", "expected"),
    [
        ("local", "", True),
        ("dev", "", True),
        ("prod", "", False),
        ("prod", "true", True),
        ("local", "false", False),
    ],
)
def test_ws_docs_default_follows_app_env(app_env: str, flag: str, expected: bool) -> None:
    current = settings(APP_ENV=app_env, JWT_SECRET=SECRET, WS_DOCS_ENABLED=flag)
    assert current.ws_docs_enabled is expected


def test_lists_and_rates_are_parsed() -> None:
    current = settings(
        SOCKET_CORS_ORIGINS=" https://a.example , https://b.example ,",
        RATE_LIMIT_TYPING="10/2",
        RATE_LIMIT_DEFAULT="7",
    )
    assert current.socket.cors_origins == ("https://a.example", "https://b.example")
    assert current.rate_limits.typing.refill_per_second == 5
    assert current.rate_limits.default.per_seconds == 1


def test_public_url_defaults_to_host_and_port() -> None:
    assert settings(HOST="0.0.0.0", PORT="9000").public_url == "http://0.0.0.0:9000"
    assert settings(PUBLIC_URL="https://chat.example").public_url == "https://chat.example"


def test_serving_variables_are_parsed() -> None:
    current = settings(
        WORKERS="4",
        REDIS_URL="redis://127.0.0.1:6379/0",
        NODE_NAME="a1",
        TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8 ,::1",
        SHUTDOWN_GRACE="2.5",
        METRICS_TOKEN="scrape-token-0123456789",
    )
    assert current.serve.workers == 4
    assert current.serve.node_name == "a1"
    assert current.serve.trusted_proxies == ("127.0.0.1", "10.0.0.0/8", "::1")
    assert current.serve.shutdown_grace == 2.5
    assert current.serve.metrics_token == "scrape-token-0123456789"
    defaults = settings().serve
    assert (defaults.workers, defaults.node_name, defaults.trusted_proxies) == (1, None, ())
    assert defaults.metrics_token is None


def test_several_workers_need_redis() -> None:
    with pytest.raises(SettingsError, match=r"WORKERS=2 needs REDIS_URL"):
        settings(WORKERS="2")
