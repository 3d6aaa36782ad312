"""What the parent can tell the child from the files alone, so it builds only what the change needs."""
from __future__ import annotations

from migration_safe.engine.model import MigrationFile, ParsedOperation, StatementKind
from migration_safe.engine.review.sql import analyse_all
from migration_safe.engine.sandbox.protocol import RunSQLTables


def runsql_tables(files: list[MigrationFile]) -> RunSQLTables:
    """Tables that the new RunSQL operations name, so the sandbox builds only the tables it needs."""
    tables: set[str] = set()
    count, unknown = 0, False
    for file in files:
        for operation in database_operations(file.operations):
            if operation.type != "RunSQL":
                continue
            count += 1
            texts = sql_texts(operation.arg("sql", position=0))
            if texts is None:
                unknown = True
                continue
            for statement in (s for text in texts for s in analyse_all(text)):
                if statement.kind is StatementKind.UNPARSED:
                    unknown = True
                tables.update(t for t in (statement.table, statement.rename_from) if t)
    return {"tables": sorted(tables), "count": count, "unknown": unknown}


def database_operations(operations: list[ParsedOperation]):
    for operation in operations:
        if operation.type == "SeparateDatabaseAndState":
            yield from database_operations(operation.nested.get("database_operations", []))
        else:
            yield operation


def sql_texts(arg) -> list[str] | None:
    value = arg.literal() if arg else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        texts = [v if isinstance(v, str) else v[0] if isinstance(v, (list, tuple)) and v else None
                 for v in value]
        return texts if all(isinstance(t, str) for t in texts) else None
    return None
