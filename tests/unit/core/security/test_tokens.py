"""JWT access tokens: each algorithm round-trips, and only the configured one is ever accepted."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from dataclasses import replace
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.config.settings import JwtSettings
from app.core.errors import AppError, ErrorCode
from app.core.security import tokens
from app.core.security.tokens import TokenCodec

SECRET = "test-secret-test-secret-test-secret-0123"


def hs256(**changes: object) -> JwtSettings:
    base = JwtSettings(
        algorithm="HS256",
        secret=SECRET,
        private_key_file=None,
        public_key_file=None,
        issuer=None,
        audience=None,
        access_ttl=900,
        refresh_ttl=3600,
        refresh_reuse_grace=2.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def key_pair(tmp_path: Path, algorithm: str, name: str) -> tuple[str, str]:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(65537, 2048)
        if algorithm == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    private = tmp_path / f"{name}-{algorithm}-private.pem"
    public = tmp_path / f"{name}-{algorithm}-public.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return str(private), str(public)


def asymmetric(tmp_path: Path, algorithm: str, name: str = "ours") -> JwtSettings:
    private, public = key_pair(tmp_path, algorithm, name)
    return hs256(algorithm=algorithm, secret="", private_key_file=private, public_key_file=public)


def refused(codec: TokenCodec, token: str) -> ErrorCode:
    with pytest.raises(AppError) as caught:
        codec.verify(token)
    return caught.value.code


def now() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp())


@pytest.mark.parametrize("algorithm", ["HS256", "RS256", "ES256"])
def test_issue_then_verify(tmp_path: Path, algorithm: str) -> None:
    codec = TokenCodec(hs256() if algorithm == "HS256" else asymmetric(tmp_path, algorithm))
    token, expires_at = codec.issue("user-1", "session-1")
    assert jwt.get_unverified_header(token)["alg"] == algorithm
    claims = codec.verify(token)
    assert claims.subject == "user-1"
    assert claims.session_id == "session-1"
    assert claims.expires_at == expires_at
    assert {"sub", "sid", "exp", "iat"} <= set(claims.raw)


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_a_token_of_another_key_is_refused(tmp_path: Path, algorithm: str) -> None:
    ours = TokenCodec(asymmetric(tmp_path, algorithm, "ours"))
    theirs = TokenCodec(asymmetric(tmp_path, algorithm, "theirs"))
    token, _ = theirs.issue("user-1", "session-1")
    assert refused(ours, token) == ErrorCode.UNAUTHORIZED


def test_hs256_token_signed_with_the_rs256_public_key_is_refused(tmp_path: Path) -> None:
    settings = asymmetric(tmp_path, "RS256")
    codec = TokenCodec(settings)
    public_pem = Path(settings.public_key_file or "").read_bytes()
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps({"sub": "attacker", "exp": now() + 600}).encode()).rstrip(
        b"="
    )
    signature = base64.urlsafe_b64encode(
        hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest()
    ).rstrip(b"=")
    forged = b".".join((header, payload, signature)).decode()
    assert refused(codec, forged) == ErrorCode.UNAUTHORIZED


def test_an_hs256_server_refuses_an_rs256_token(tmp_path: Path) -> None:
    rs_token, _ = TokenCodec(asymmetric(tmp_path, "RS256")).issue("user-1", "session-1")
    assert refused(TokenCodec(hs256()), rs_token) == ErrorCode.UNAUTHORIZED


def test_alg_none_is_refused() -> None:
    unsigned = jwt.encode({"sub": "user-1", "exp": now() + 600}, "", algorithm="none")
    assert refused(TokenCodec(hs256()), unsigned) == ErrorCode.UNAUTHORIZED


def test_exp_is_required() -> None:
    token = jwt.encode({"sub": "user-1"}, SECRET, algorithm="HS256")
    assert refused(TokenCodec(hs256()), token) == ErrorCode.UNAUTHORIZED


def test_sub_is_required() -> None:
    token = jwt.encode({"exp": now() + 600}, SECRET, algorithm="HS256")
    assert refused(TokenCodec(hs256()), token) == ErrorCode.UNAUTHORIZED


def test_an_expired_token_says_token_expired() -> None:
    codec = TokenCodec(hs256())
    token, _ = codec.issue("user-1", "session-1", ttl=-60)
    assert refused(codec, token) == ErrorCode.TOKEN_EXPIRED


def test_a_tampered_token_is_refused() -> None:
    codec = TokenCodec(hs256())
    token, _ = codec.issue("user-1", "session-1")
    header, _, signature = token.split(".")
    other = base64.urlsafe_b64encode(
        json.dumps({"sub": "admin", "sid": "session-1", "exp": now() + 600}).encode()
    ).rstrip(b"=")
    assert refused(codec, f"{header}.{other.decode()}.{signature}") == ErrorCode.UNAUTHORIZED
    assert refused(codec, "not-a-jwt") == ErrorCode.UNAUTHORIZED


def test_issuer_and_audience_are_issued_and_required() -> None:
    codec = TokenCodec(hs256(issuer="https://auth.example", audience="parley"))
    token, _ = codec.issue("user-1", "session-1")
    assert codec.verify(token).raw["iss"] == "https://auth.example"
    assert codec.verify(token).raw["aud"] == "parley"
    for claims in (
        {"sub": "u", "exp": now() + 600, "aud": "parley"},
        {"sub": "u", "exp": now() + 600, "iss": "https://evil.example", "aud": "parley"},
        {"sub": "u", "exp": now() + 600, "iss": "https://auth.example"},
        {"sub": "u", "exp": now() + 600, "iss": "https://auth.example", "aud": "other-app"},
    ):
        assert refused(codec, jwt.encode(claims, SECRET, algorithm="HS256")) == ErrorCode.UNAUTHORIZED


def test_external_token_without_sid_is_accepted_on_signature_and_expiry() -> None:
    codec = TokenCodec(hs256())
    token = jwt.encode({"sub": "external-42", "exp": now() + 600}, SECRET, algorithm="HS256")
    claims = codec.verify(token)
    assert claims.subject == "external-42"
    assert claims.session_id is None


def test_a_verify_only_server_cannot_issue(tmp_path: Path) -> None:
    settings = asymmetric(tmp_path, "ES256")
    codec = TokenCodec(replace(settings, private_key_file=None))
    assert not codec.can_issue
    with pytest.raises(AppError) as caught:
        codec.issue("user-1", "session-1")
    assert caught.value.code == ErrorCode.UNAVAILABLE


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_a_token_dated_in_the_future_is_refused(claim: str) -> None:
    token = jwt.encode({"sub": "user-1", "exp": now() + 600, claim: now() + 120}, SECRET, algorithm="HS256")
    assert refused(TokenCodec(hs256()), token) == ErrorCode.UNAUTHORIZED


def test_key_hints_in_the_header_choose_no_key() -> None:
    """`kid` and `jku` are ignored: only the configured key verifies, whatever the header points at."""
    hints = {"kid": "attacker-key", "jku": "https://evil.example/jwks.json"}
    claims = {"sub": "user-1", "exp": now() + 600}
    codec = TokenCodec(hs256())
    assert codec.verify(jwt.encode(claims, SECRET, algorithm="HS256", headers=hints)).subject == "user-1"
    forged = jwt.encode(claims, "another-secret-another-secret-0123", algorithm="HS256", headers=hints)
    assert refused(codec, forged) == ErrorCode.UNAUTHORIZED


def test_a_token_verified_before_is_not_decoded_again_yet_still_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec = TokenCodec(hs256())
    token, _ = codec.issue("user-1", "session-1", ttl=60)
    first = codec.verify(token)

    def decode_again(*_: object, **__: object) -> None:
        raise AssertionError("a verified token was decoded again")

    monkeypatch.setattr(jwt, "decode", decode_again)
    assert codec.verify(token) is first
    later = time.time() + 60 + tokens.LEEWAY + 1

    def expired_by_then(*_: object, **__: object) -> None:
        raise jwt.ExpiredSignatureError

    monkeypatch.setattr(time, "time", lambda: later)
    monkeypatch.setattr(jwt, "decode", expired_by_then)
    with pytest.raises(AppError) as expired:
        codec.verify(token)
    assert expired.value.code is ErrorCode.TOKEN_EXPIRED


def test_verified_tokens_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "VERIFIED_KEPT", 2)
    codec = TokenCodec(hs256())
    issued = [codec.issue(f"user-{n}", f"session-{n}")[0] for n in range(3)]
    for token in issued:
        codec.verify(token)
    decoded: list[str] = []
    real_decode = jwt.decode

    def counting(token: str, *args: object, **kwargs: object) -> object:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting)
    for token in (issued[1], issued[2], issued[0]):
        codec.verify(token)
    assert decoded == [issued[0]], "the least recently used one was let go"
