"""Table sizes from production: `migration-safe stats` exports them, `tables.stats` reads them back,
and findings quote them.

The export reads the catalogue only: `pg_class.reltuples` (the planner's row estimate, kept by
VACUUM and ANALYZE) and `pg_total_relation_size` (heap, indexes and TOAST). No row of any table is
read, so a role with nothing but CONNECT on the database is enough; a read replica serves it.

The file maps each table to `{"bytes": …, "rows": …}`, a table a line in name order, so that a
refresh reads as a diff. The first format, `{"table": rows}`, is still read.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import psycopg

from migration_safe.engine.model import Finding, Operation, StatementKind, TableSize
from migration_safe.engine.sandbox.database import redact

if TYPE_CHECKING:
    from migration_safe.config import Config

# Waiting behind a migration's ACCESS EXCLUSIVE lock would hold the export (and, on a primary,
# everything queued behind it): give up instead and say so.
LOCK_TIMEOUT = "5s"
STATEMENT_TIMEOUT = "5min"

# Every ordinary and partitioned table outside the system schemas; a partitioned table counts its
# leaf partitions, which are left out themselves. Rows are unknown (NULL) when the planner never
# looked: reltuples -1 (PostgreSQL 14+), or a heap with pages the last ANALYZE did not see.
QUERY = """
WITH listed AS (
    SELECT c.oid, n.nspname, c.relname, c.relkind
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
      AND (%(schemas)s::text[] IS NULL OR n.nspname = ANY(%(schemas)s::text[]))
), parts AS (
    SELECT listed.oid AS top, part.oid, part.reltuples, part.relpages
    FROM listed
    CROSS JOIN LATERAL (SELECT relid FROM pg_catalog.pg_partition_tree(listed.oid) WHERE isleaf) leaf
    JOIN pg_catalog.pg_class part ON part.oid = leaf.relid
    WHERE listed.relkind = 'p'
    UNION ALL
    SELECT listed.oid, c.oid, c.reltuples, c.relpages
    FROM listed JOIN pg_catalog.pg_class c ON c.oid = listed.oid
    WHERE listed.relkind = 'r'
), sized AS (
    SELECT top,
           CASE WHEN reltuples < 0 OR (relpages = 0 AND pg_catalog.pg_relation_size(oid) > 0) THEN NULL
                ELSE reltuples::float8 END AS rows,
           pg_catalog.pg_total_relation_size(oid) AS bytes
    FROM parts
)
SELECT listed.nspname, listed.relname,
       CASE WHEN count(sized.rows) = count(sized.top) THEN coalesce(sum(sized.rows), 0) END,
       coalesce(sum(sized.bytes), 0)::bigint
FROM listed LEFT JOIN sized ON sized.top = listed.oid
GROUP BY listed.oid, listed.nspname, listed.relname
ORDER BY listed.relname, listed.nspname
"""
ENTRY_KEYS = {"rows", "bytes"}
BIGINT = 2**63 - 1  # PostgreSQL's own bound on both: a larger number is no real table's


class StatsError(RuntimeError):
    """The sizes could not be read from the database."""


# ------------------------------------------------------------------ export


def export(url: str, schemas: list[str] | None = None) -> dict[str, TableSize]:
    """The size of every table of the database at `url` (of `schemas` only, when given), by name."""
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            conn.read_only = True
            conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            conn.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
            found = conn.execute(QUERY, {"schemas": schemas or None}).fetchall()
            path, user = conn.execute("SELECT current_setting('search_path'), current_user").fetchone()
            conn.rollback()
    except psycopg.errors.LockNotAvailable as exc:
        raise StatsError(f"a table stayed locked for {LOCK_TIMEOUT} (a migration running?); nothing was "
                         f"written, run it again: {exc}") from exc
    except psycopg.OperationalError as exc:
        raise StatsError(f"cannot read the sizes from {redact(url)}: {exc}") from exc
    except psycopg.Error as exc:
        raise StatsError(f"the catalogue query failed on {redact(url)}: {exc}") from exc
    return by_name(found, schemas or search_path(path, user))


def search_path(setting: str, user: str) -> list[str]:
    """The schemas of a `search_path` setting, in order, as written (whether the role may use them
    or not: the application's role may, the exporting one need not)."""
    names = [part.strip() for part in setting.split(",")]
    return [user if name == '"$user"' or name == "$user" else name.strip('"') for name in names if name]


def by_name(found: list[tuple], order: list[str]) -> dict[str, TableSize]:
    """Findings name tables without their schema, as Django's SQL does: a name in several schemas is
    the table of the first schema in `order` (--schema's, else the search path's), as PostgreSQL
    resolves that SQL."""
    candidates: dict[str, list[tuple]] = {}
    for row in found:
        candidates.setdefault(row[1], []).append(row)
    sizes = {}
    for name, rows in candidates.items():
        chosen = sorted((row for row in rows if row[0] in order), key=lambda row: order.index(row[0])) \
            if len(rows) > 1 else rows
        if not chosen:
            raise StatsError(f"table {name} is in schemas {', '.join(row[0] for row in rows)}, none of them "
                             "on the search_path: choose with --schema")
        _schema, _name, estimate, size = chosen[0]
        sizes[name] = TableSize(name, None if estimate is None else round(estimate), size)
    return sizes


def render(sizes: dict[str, TableSize]) -> str:
    """The file's text: a table a line, sorted, so that a refresh diffs table by table."""
    lines = [f"  {json.dumps(name)}: {json.dumps(_fields(sizes[name]), sort_keys=True)}" for name in sorted(sizes)]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _fields(size: TableSize) -> dict[str, int]:
    return {key: value for key, value in (("rows", size.rows), ("bytes", size.bytes)) if value is not None}


def write(path: Path, text: str) -> None:
    """Whole or not at all: a failed refresh never leaves half a file for the review to read."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


# ------------------------------------------------------------------ reading


def parse(data: Any) -> dict[str, TableSize]:
    """The stats file's JSON: `{"table": {"rows": n, "bytes": n}}`, or the first `{"table": rows}`.
    ValueError says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("must map table names to {\"rows\": …, \"bytes\": …} (or to row counts)")
    return {name: _entry(name, value) for name, value in data.items()}


def _entry(name: str, value: Any) -> TableSize:
    if _count(value):
        return TableSize(name, rows=value)
    if not isinstance(value, dict) or not set(value) <= ENTRY_KEYS or not all(map(_count, value.values())):
        raise ValueError(f"{name}: must be {{\"rows\": …, \"bytes\": …}} with whole numbers, "
                         f"or a row count, not {json.dumps(value)[:80]}")
    return TableSize(name, rows=value.get("rows"), bytes=value.get("bytes"))


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= BIGINT


# ------------------------------------------------------------------ findings


def quote_sizes(findings: list[Finding], operations: list[Operation], config: Config) -> None:
    """A finding quotes the known size of each table its operations lock, scan or rewrite: in its
    message (every output shows that) after the table's name, or at its end when it names none,
    and as `tables` for the JSON."""
    by_index = {op.index: op for op in operations}
    for finding in findings:
        touched = tables_touched(by_index[i] for i in finding.operations if i in by_index)
        sizes = [size for size in map(config.table_size, touched) if size is not None]
        if sizes:
            finding.tables = sizes
            finding.message = quoted(finding.message, sizes)


def tables_touched(operations: Iterable[Operation]) -> list[str]:
    """Existing tables the operations act on, in order: a new table is empty in production."""
    names: list[str] = []
    for operation in operations:
        for statement in operation.statements:
            own = [statement.table] if statement.kind is not StatementKind.CREATE_TABLE else []
            locked = [lock.table if lock.kind == "index" else lock.relation for lock in statement.locks
                      if lock.kind in ("table", "index") and not lock.new_in_review]
            names += [name for name in own + locked + statement.rewrites if name]
    return list(dict.fromkeys(names))


def quoted(message: str, sizes: list[TableSize]) -> str:
    """"rewrites shop_order" -> "rewrites shop_order (1.2 billion rows, 340 GB)". The last bare
    mention is the one annotated: a message opens with the SQL it quotes, names in it are quoted
    or followed by a column (`shop_order.total`)."""
    named = False
    for size in sizes:
        mentions = list(re.finditer(rf"(?<![\w.\"'`$]){re.escape(size.name)}(?![\w\"'`$]|\.\w)", message))
        if mentions:
            at = mentions[-1].end()
            message, named = f"{message[:at]} ({describe(size)}){message[at:]}", True
    if named:
        return message
    text = message.rstrip()
    text += "" if text.endswith((".", "!", "?")) else "."
    return text + " Table sizes (tables.stats): " + "; ".join(f"{s.name} {describe(s)}" for s in sizes) + "."


def describe(size: TableSize) -> str:
    """"1.2 billion rows, 340 GB": what a reviewer needs, at a glance."""
    parts = [] if size.rows is None else [rows_text(size.rows)]
    return ", ".join(parts + ([] if size.bytes is None else [bytes_text(size.bytes)]))


ROW_WORDS = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"))
BYTE_UNITS = ("kB", "MB", "GB", "TB", "PB")  # powers of 1024, as PostgreSQL's pg_size_pretty


def rows_text(rows: int) -> str:
    for value, word in ROW_WORDS:
        if rows >= value:
            return f"{_short(rows / value)} {word} rows"
    return f"{rows:,} row" + ("" if rows == 1 else "s")


def bytes_text(size: int) -> str:
    power = min((size.bit_length() - 1) // 10, len(BYTE_UNITS)) if size else 0
    if power == 0:
        return f"{size} byte" + ("" if size == 1 else "s")
    return f"{_short(size / 1024 ** power)} {BYTE_UNITS[power - 1]}"


def _short(value: float) -> str:
    """Three significant digits at most: 1.2, 12.5, 340."""
    return f"{value:.1f}".removesuffix(".0") if value < 99.95 else f"{value:.0f}"
