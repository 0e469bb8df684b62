"""A service account's access token: the OAuth 2.0 JWT bearer grant, signed here.

Google's server-to-server flow: the service account's JSON key (created in the Google Cloud
console, and added as a user of the Merchant Center account) holds ``client_email``,
``private_key`` (RSA, PEM), ``private_key_id`` and ``token_uri``. The client signs a JWT with
RS256 — header ``kid`` = the key id; claims ``iss`` = the client email, ``scope`` (the
Merchant API needs ``https://www.googleapis.com/auth/content``), ``aud`` = the token URI,
``iat`` and ``exp`` (at most an hour after ``iat``) — and posts it to the token URI as a form:
``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>``. The answer is
``{"access_token", "expires_in", "token_type": "Bearer"}``; a refused assertion is a 400 with
``{"error": "invalid_grant", "error_description": ...}``. No refresh token comes back: a new
assertion gets a new token.

The token URI comes from the key file (``https://oauth2.googleapis.com/token`` in keys Google
issues), which is also how the tests point the connector at an emulator on 127.0.0.1.

The private key, the whole key file and every token are registered with
:mod:`omnisync.secrets` as soon as they are read or issued; no message quotes them. Signing
uses PyJWT with cryptography (the ``omnisync[google]`` extra), imported on first use, so the
connector lists and validates without it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from omnisync import secrets
from omnisync.errors import AuthError, ConnectorError

SCOPE = "https://www.googleapis.com/auth/content"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Seconds an assertion is valid (Google's maximum is one hour).
ASSERTION_LIFETIME = 3600

KEY_HINT = (
    "set options.key to the service account's JSON key, e.g. key: ${file:service-account.json} "
    "(Google Cloud console > IAM > Service accounts > Keys > Add key > JSON), and add the "
    "service account's email as a user of the Merchant Center account"
)


@dataclass(frozen=True)
class ServiceAccountKey:
    """The parts of a service account's JSON key the grant needs."""

    client_email: str
    private_key: str
    private_key_id: str | None
    token_uri: str

    @classmethod
    def parse(cls, text: str, *, where: str) -> ServiceAccountKey:
        """The key in ``text`` (the JSON key file's content), its secrets registered first.
        A malformed key raises :class:`ConnectorError` that never quotes the key."""
        secrets.register(text)
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise ConnectorError(
                "options.key is not a service account JSON key (not JSON)",
                where=where,
                hint=KEY_HINT,
            ) from None
        if not isinstance(data, dict):
            raise ConnectorError(
                "options.key is not a service account JSON key", where=where, hint=KEY_HINT
            )
        private_key = data.get("private_key")
        if isinstance(private_key, str):
            register_pem(private_key)
        missing = [
            name
            for name in ("client_email", "private_key", "token_uri")
            if not isinstance(data.get(name), str) or not data.get(name)
        ]
        if missing:
            kind = data.get("type")
            what = f" (its type is {kind!r})" if isinstance(kind, str) and kind else ""
            raise ConnectorError(
                f"options.key lacks {', '.join(missing)}: not a service account key{what}",
                where=where,
                hint=KEY_HINT,
            )
        key_id = data.get("private_key_id")
        return cls(
            client_email=str(data["client_email"]),
            private_key=str(private_key),
            private_key_id=str(key_id) if key_id else None,
            token_uri=str(data["token_uri"]),
        )

    def assertion(self, now: float, scope: str = SCOPE) -> str:
        """The signed JWT for the bearer grant, valid from ``now`` (Unix seconds) for an hour."""
        jwt = _jwt_module()
        claims: dict[str, Any] = {
            "iss": self.client_email,
            "scope": scope,
            "aud": self.token_uri,
            "iat": int(now),
            "exp": int(now) + ASSERTION_LIFETIME,
        }
        headers = {"kid": self.private_key_id} if self.private_key_id else None
        try:
            return str(jwt.encode(claims, self.private_key, algorithm="RS256", headers=headers))
        except Exception:  # cryptography's errors vary; none may quote the key
            raise AuthError(
                "the service account key's private_key cannot sign (not an RSA key in PEM form)",
                hint=KEY_HINT,
            ) from None


def register_pem(pem: str) -> None:
    """Register a PEM key as a secret: whole, and each of its base64 lines (a message that
    quotes part of the key then shows none of it)."""
    lines = (line.strip() for line in pem.splitlines())
    secrets.register_all([pem, *(line for line in lines if line and not line.startswith("-----"))])


def _jwt_module() -> Any:
    try:
        import jwt
    except ImportError:
        raise ConnectorError(
            "signing the service account's token request needs PyJWT with cryptography",
            hint="pip install 'omnisync[google]'",
        ) from None
    return jwt
