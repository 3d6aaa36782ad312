"""PostgreSQL session state for a run: the runner lock, the timeouts, and what an error was."""
from __future__ import annotations

from collections.abc import Iterator

from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper

# One runner per database: a session advisory lock (advisory locks are per database). The key is
# the bytes "ms_deplo", so that it shows recognisably in pg_locks (classid 1836277604, objid 1701866607).
RUNNER_LOCK_KEY = 0x6D735F6465706C6F

LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout expired (or NOWAIT)
QUERY_CANCELED = "57014"  # statement_timeout expired (or a cancel request)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE behind Django's wrapper (psycopg 3: sqlstate, psycopg2: pgcode)."""
    for error in _chain(exc):
        code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if code:
            return code
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def milliseconds(seconds: float | None) -> str:
    return f"{round(seconds * 1000)}ms" if seconds else "0"  # 0: no timeout


def set_timeouts(connection: BaseDatabaseWrapper, lock_timeout: float | None,
                 statement_timeout: float | None) -> tuple[str, str]:
    """Session-wide, so that they hold inside Django's transactions and outside them; returns
    the previous values."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")
        previous = cursor.fetchone()
        restore_timeouts(connection, (milliseconds(lock_timeout), milliseconds(statement_timeout)))
    return previous


def restore_timeouts(connection: BaseDatabaseWrapper, values: tuple[str, str]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, false), "
                       "set_config('statement_timeout', %s, false)", list(values))


def acquire_runner_lock(connection: BaseDatabaseWrapper, wait: float) -> bool:
    """Wait up to `wait` seconds (0: not at all) for the runner lock."""
    with connection.cursor() as cursor:
        if wait <= 0:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [RUNNER_LOCK_KEY])
            return bool(cursor.fetchone()[0])
    # An advisory lock wait obeys lock_timeout: no polling, and the queue is PostgreSQL's, in order.
    previous = set_timeouts(connection, wait, None)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [RUNNER_LOCK_KEY])
        return True
    except DatabaseError as exc:
        if sqlstate(exc) == LOCK_NOT_AVAILABLE:
            return False
        raise
    finally:
        restore_timeouts(connection, previous)


def release_runner_lock(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [RUNNER_LOCK_KEY])


def runner_lock_holder(connection: BaseDatabaseWrapper) -> str | None:
    """Who holds the runner lock, as far as this role may see."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.pid, a.client_addr, a.application_name, a.backend_start FROM pg_locks l "
            "LEFT JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
            "AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = %s", [RUNNER_LOCK_KEY])
        row = cursor.fetchone()
    if row is None:
        return None
    pid, address, application, since = row
    where = ", ".join(str(part) for part in (address, application) if part)
    since_text = f", connected since {since:%Y-%m-%d %H:%M:%S %Z}" if since else ""
    return f"backend pid {pid}" + (f" ({where})" if where else "") + since_text


def invalid_index(connection: BaseDatabaseWrapper, name: str) -> tuple[str, str, bool] | None:
    """(schema, name, being built) of an INVALID index of that name on the search path, if any."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname, c.relname, EXISTS (SELECT 1 FROM pg_stat_progress_create_index p "
            "WHERE p.index_relid = c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = %s AND NOT i.indisvalid AND pg_table_is_visible(c.oid)", [name])
        return cursor.fetchone()


def drop_index_concurrently(connection: BaseDatabaseWrapper, schema: str, name: str) -> None:
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(schema)}.{quote(name)}")
