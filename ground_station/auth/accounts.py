"""Accounts in the ground station's database: users (argon2id password hashes), server-side
browser sessions (revocable, each with its own CSRF token) and API tokens (kept only as SHA-256
digests: a token is 256 random bits, so a fast hash is enough and a leaked table reveals nothing)."""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

from ground_station.auth.roles import Role

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
)
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(64), sa.ForeignKey("users.username", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("expires", sa.Float, nullable=False, index=True),
)
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("revoked", sa.Float, nullable=True),
)

TOKEN_NAME_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"  # what create_token takes


class AccountError(ValueError):
    """A request about accounts that cannot be done (unknown user, weak password, duplicate…)."""


class AccountNotFound(AccountError):
    """No such user, or no such active token."""


class AccountExists(AccountError):
    """A user by that name exists already."""


class LastAdminError(AccountError):
    """The change would leave the station without an enabled admin (nobody could manage accounts)."""


class HashingBusy(RuntimeError):
    """Every password-hashing slot is taken: the caller should answer "try again shortly", not queue."""


@dataclass(slots=True, frozen=True)
class Principal:
    """Who is making a request, and how they proved it."""

    name: str
    role: Role
    via: str  # "session" or "token"
    csrf_token: str | None = None


MIN_PASSWORD_LENGTH = 10
USERNAME_PATTERN = r"[A-Za-z0-9._-]{1,64}"  # also the API's schema: what the document says is what is accepted


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Accounts:
    """Users, sessions and tokens on the store's engine (tables created on start).

    `hasher`: how passwords are hashed; None is argon2id with the library's (RFC 9106) parameters. Tests
    pass a cheaper one; a stored hash carries its own parameters, so any hash verifies with any hasher.
    `max_concurrent_hashes`: argon2 takes 64 MiB and a core for ~0.3 s per hash, so at most this many run at
    once; a login that finds no slot within `hash_wait_s` gets HashingBusy (40 concurrent wrong logins once
    took the station from 140 MiB to 2.4 GiB).
    """

    def __init__(
        self,
        engine: Engine,
        session_ttl_s: float = 12 * 3600,
        hasher: PasswordHasher | None = None,
        max_concurrent_hashes: int = 2,
        hash_wait_s: float = 0.5,
    ) -> None:
        self.engine = engine
        self.session_ttl_s = session_ttl_s
        self.hasher = hasher if hasher is not None else PasswordHasher()
        self._hash_slots = threading.BoundedSemaphore(max_concurrent_hashes)
        self.hash_wait_s = hash_wait_s
        self.hashing_refused = 0
        metadata.create_all(engine)
        # A hash of a random password: verifying against it when the user is unknown makes a failed
        # login take as long as a wrong password, so timing does not reveal which usernames exist.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    @contextlib.contextmanager
    def _hashing(self) -> Iterator[None]:
        """One of the bounded hashing slots, or HashingBusy."""
        if not self._hash_slots.acquire(timeout=self.hash_wait_s):
            self.hashing_refused += 1
            raise HashingBusy("too many logins at once; try again in a second")
        try:
            yield
        finally:
            self._hash_slots.release()

    # -- users ---------------------------------------------------------------------------
    def create_user(self, username: str, password: str, role: Role) -> None:
        if not re.fullmatch(USERNAME_PATTERN, username):
            raise AccountError("username must be 1-64 letters, digits, '.', '_' or '-'")
        self._check_password(password)
        with self._hashing():
            password_hash = self.hasher.hash(password)
        with self.engine.begin() as conn:
            if conn.execute(sa.select(users.c.username).where(users.c.username == username)).first():
                raise AccountExists(f"user {username!r} exists already")
            conn.execute(
                users.insert().values(
                    username=username, password_hash=password_hash, role=role.value,
                    created=time.time(), disabled=False,
                )
            )  # fmt: skip

    def _check_password(self, password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AccountError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")

    def update_user(
        self, username: str, role: Role | None = None, password: str | None = None, disabled: bool | None = None
    ) -> None:
        """Change what is given (at least one of role, password, disabled); sessions end on any change."""
        values: dict[str, object] = {}
        if role is not None:
            values["role"] = role.value
        if password is not None:
            self._check_password(password)
            with self._hashing():
                values["password_hash"] = self.hasher.hash(password)
        if disabled is not None:
            values["disabled"] = disabled
        if not values:
            raise AccountError("nothing to change: give role, password or disabled")
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(users.c.role, users.c.disabled).where(users.c.username == username)).first()
            if row is None:
                raise AccountNotFound(f"no user {username!r}")
            loses_admin = (
                row.role == Role.ADMIN.value
                and not row.disabled
                and (disabled or (role is not None and role is not Role.ADMIN))
            )
            if loses_admin and self._admins(conn) <= 1:
                raise LastAdminError(f"{username!r} is the last enabled admin: it cannot be demoted or disabled")
            conn.execute(users.update().where(users.c.username == username).values(**values))
            if disabled or password is not None or role is not None:
                conn.execute(sessions.delete().where(sessions.c.username == username))  # re-login required

    def delete_user(self, username: str) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(users.c.role, users.c.disabled).where(users.c.username == username)).first()
            if row is not None and row.role == Role.ADMIN.value and not row.disabled and self._admins(conn) <= 1:
                raise LastAdminError(f"{username!r} is the last enabled admin: it cannot be deleted")
            conn.execute(sessions.delete().where(sessions.c.username == username))
            if not conn.execute(users.delete().where(users.c.username == username)).rowcount:
                raise AccountNotFound(f"no user {username!r}")

    def list_users(self) -> list[dict[str, object]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(users.c.username, users.c.role, users.c.created, users.c.disabled)
                                .order_by(users.c.username)).mappings()  # fmt: skip
            return [dict(r) for r in rows]

    def count_admins(self) -> int:
        with self.engine.connect() as conn:
            return self._admins(conn)

    @staticmethod
    def _admins(conn: sa.Connection) -> int:
        query = sa.select(sa.func.count()).where(users.c.role == Role.ADMIN.value, users.c.disabled.is_(False))
        return int(conn.execute(query).scalar_one())

    # -- sessions ------------------------------------------------------------------------
    def login(self, username: str, password: str) -> tuple[str, Principal] | None:
        """A new session id (for the cookie) and its principal, or None for wrong credentials.

        Raises HashingBusy when every hashing slot stays taken (the caller answers 503, nothing is verified)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.username == username)).mappings().first()
        with self._hashing():
            try:
                self.hasher.verify(row["password_hash"] if row else self._dummy_hash, password)
            except (VerificationError, InvalidHashError):
                return None
            stale = row is not None and self.hasher.check_needs_rehash(row["password_hash"])
            rehashed = self.hasher.hash(password) if stale else None
        if row is None or row["disabled"]:
            return None
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.expires < now))
            conn.execute(sessions.insert().values(id_hash=_digest(session_id), username=username, csrf_token=csrf,
                                                  expires=now + self.session_ttl_s))  # fmt: skip
            if rehashed is not None:
                conn.execute(users.update().where(users.c.username == username).values(password_hash=rehashed))
        return session_id, Principal(username, Role(row["role"]), "session", csrf)

    def session(self, session_id: str) -> Principal | None:
        query = (
            sa.select(users.c.username, users.c.role, users.c.disabled, sessions.c.csrf_token, sessions.c.expires)
            .join(users, users.c.username == sessions.c.username)
            .where(sessions.c.id_hash == _digest(session_id))
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None or row["disabled"] or row["expires"] < time.time():
            return None
        return Principal(row["username"], Role(row["role"]), "session", row["csrf_token"])

    def logout(self, session_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.id_hash == _digest(session_id)))

    # -- API tokens ----------------------------------------------------------------------
    def create_token(self, name: str, role: Role, created_by: str) -> tuple[str, str]:
        """(id, token); the token is returned once and only its digest is kept."""
        if len(name) > 128 or not re.fullmatch(TOKEN_NAME_PATTERN, name):
            raise AccountError("token name must be 1-128 printable characters, not only spaces")
        token_id, token = secrets.token_hex(8), "se_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            row = dict(id=token_id, name=name, token_hash=_digest(token), role=role.value, created_by=created_by)
            conn.execute(api_tokens.insert().values(**row, created=time.time(), revoked=None))
        return token_id, token

    def token(self, token: str) -> Principal | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == _digest(token))).mappings().first()
            )
        if row is None or row["revoked"] is not None:
            return None
        return Principal(f"token:{row['name']}", Role(row["role"]), "token")

    def revoke_token(self, token_id: str) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(api_tokens.update().where(api_tokens.c.id == token_id, api_tokens.c.revoked.is_(None))
                                  .values(revoked=time.time()))  # fmt: skip
            if not result.rowcount:
                raise AccountNotFound(f"no active token {token_id!r}")

    def list_tokens(self) -> list[dict[str, object]]:
        columns = (api_tokens.c.id, api_tokens.c.name, api_tokens.c.role, api_tokens.c.created_by,
                   api_tokens.c.created, api_tokens.c.revoked)  # fmt: skip
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(*columns).order_by(api_tokens.c.created)).mappings()]
