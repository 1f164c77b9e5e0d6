"""Service-account keys, the OAuth token endpoint, and bearer-token checks."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gsheets_standin._errors import unauthenticated

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCES = (
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
)
"""Audiences Google accepts in an assertion: google-auth always signs the first, whatever
the key file's token_uri says."""
_MAX_ASSERTION_LIFETIME = 3600
_LEEWAY = 300


@dataclass(frozen=True)
class ServiceAccountKey:
    """A generated service-account key: the JSON key file's content and its public key."""

    info: dict[str, str]
    public_key_pem: bytes

    @property
    def email(self) -> str:
        """The account's `client_email`."""
        return self.info["client_email"]

    def dumps(self) -> str:
        """The key file's text."""
        return json.dumps(self.info, indent=2)


def generate_service_account_key(
    email: str, token_uri: str, project_id: str = "standin-project"
) -> ServiceAccountKey:
    """A fresh RSA key pair in Google's service-account key-file format, for `token_uri`."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    base = token_uri.rsplit("/", 1)[0]
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": email,
        "client_id": str(secrets.randbelow(10**20)),
        "auth_uri": f"{base}/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": f"{base}/oauth2/v1/certs",
        "client_x509_cert_url": f"{base}/robot/v1/metadata/x509/{email}",
        "universe_domain": "googleapis.com",
    }
    return ServiceAccountKey(info, public)


@dataclass(frozen=True)
class _User:
    client_id: str
    client_secret: str
    email: str


class Authority:
    """Registered accounts and issued tokens; thread-safe.

    Token lifetimes use wall-clock time, as google-auth computes expiry from it.
    """

    def __init__(self, token_lifetime: int = 3600, wall: Callable[[], float] = time.time) -> None:
        self.token_lifetime = token_lifetime
        self._wall = wall
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[bytes, str]] = {}
        self._users: dict[str, _User] = {}
        self._tokens: dict[str, tuple[str, float]] = {}

    def register_key(self, key: ServiceAccountKey) -> None:
        """Accept JWT assertions signed by `key` for its `client_email`."""
        with self._lock:
            self._keys[key.email] = (key.public_key_pem, key.info["private_key_id"])

    def register_user(self, email: str) -> dict[str, str]:
        """An OAuth authorized-user identity for `email`; the file fields minus token_uri."""
        user = _User(
            client_id=f"{secrets.randbelow(10**12)}-standin.apps.googleusercontent.com",
            client_secret=secrets.token_urlsafe(18),
            email=email,
        )
        refresh_token = "1//" + secrets.token_urlsafe(40)
        with self._lock:
            self._users[refresh_token] = user
        return {
            "type": "authorized_user",
            "client_id": user.client_id,
            "client_secret": user.client_secret,
            "refresh_token": refresh_token,
            "account": email,
        }

    def issue(self, email: str) -> str:
        """A new bearer token for `email`."""
        token = "ya29.standin-" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (email, self._wall() + self.token_lifetime)
        return token

    def revoke_all(self) -> None:
        """Invalidate every token issued so far."""
        with self._lock:
            self._tokens.clear()

    def revoke(self, token: str) -> None:
        """Invalidate one token."""
        with self._lock:
            self._tokens.pop(token, None)

    def authenticate(self, authorization: str | None, method: str) -> tuple[str, str]:
        """(email, token) for a valid `Authorization: Bearer` header; 401 otherwise."""
        if not authorization:
            raise unauthenticated("CREDENTIALS_MISSING", method)
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthenticated("ACCESS_TOKEN_TYPE_UNSUPPORTED", method)
        token = token.strip()
        with self._lock:
            found = self._tokens.get(token)
        if found is None:
            raise unauthenticated("ACCESS_TOKEN_TYPE_UNSUPPORTED", method)
        email, expires = found
        if self._wall() >= expires:
            raise unauthenticated("ACCESS_TOKEN_EXPIRED", method)
        return email, token

    def grant(self, form: Mapping[str, str], token_url: str) -> tuple[int, dict[str, Any]]:
        """Answer a POST to the token endpoint: (status, JSON body)."""
        grant_type = form.get("grant_type", "")
        if grant_type == JWT_BEARER:
            return self._jwt_grant(form.get("assertion", ""), token_url)
        if grant_type == "refresh_token":
            return self._refresh_grant(form)
        return 400, {
            "error": "unsupported_grant_type",
            "error_description": f"Invalid grant_type: {grant_type}",
        }

    def _jwt_grant(self, assertion: str, token_url: str) -> tuple[int, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return _invalid_grant(
                "Invalid JWT: Token must be a short-lived token and in a valid format"
            )
        issuer = claims.get("iss")
        with self._lock:
            known = self._keys.get(str(issuer))
        if known is None:
            return _invalid_grant("Invalid grant: account not found")
        public_pem, key_id = known
        if header.get("kid") not in (None, key_id):
            return _invalid_grant("Invalid JWT Signature.")
        try:
            verified = jwt.decode(
                assertion,
                public_pem,
                algorithms=["RS256"],
                audience=[token_url, *GOOGLE_TOKEN_AUDIENCES],
                # Time claims are checked below against this authority's clock.
                options={
                    "require": ["iss", "aud", "iat", "exp"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidSignatureError:
            return _invalid_grant("Invalid JWT Signature.")
        except jwt.InvalidAudienceError:
            return _invalid_grant("Invalid JWT: Failed audience check.")
        except jwt.PyJWTError as exc:
            return _invalid_grant(f"Invalid JWT: Token must be in a valid format ({exc})")
        now = self._wall()
        issued, expires = int(verified["iat"]), int(verified["exp"])
        if issued > now + _LEEWAY or expires < now - _LEEWAY:
            # Google's answer to a signer whose clock is off (iat in the future, exp past).
            return _invalid_grant(
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe. Check your iat and exp values in the JWT claim."
            )
        if expires - issued > _MAX_ASSERTION_LIFETIME:
            return _invalid_grant("Invalid JWT: Token must be a short-lived token (60 minutes)")
        if not verified.get("scope") and not verified.get("target_audience"):
            return 400, {"error": "invalid_scope", "error_description": "Empty or missing scope"}
        return 200, self._token_body(str(issuer))

    def _refresh_grant(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            user = self._users.get(form.get("refresh_token", ""))
        if user is None:
            return _invalid_grant("Token has been expired or revoked.")
        if (
            form.get("client_id") != user.client_id
            or form.get("client_secret") != user.client_secret
        ):
            return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
        body = self._token_body(user.email)
        if form.get("scope"):
            body["scope"] = form["scope"]
        return 200, body

    def _token_body(self, email: str) -> dict[str, Any]:
        return {
            "access_token": self.issue(email),
            "expires_in": self.token_lifetime - 1,
            "token_type": "Bearer",
        }


def _invalid_grant(description: str) -> tuple[int, dict[str, Any]]:
    return 400, {"error": "invalid_grant", "error_description": description}
