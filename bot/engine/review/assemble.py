"""Joins what the file says (parse) with what the sandbox saw (child) into Operations."""
from __future__ import annotations

from migration_safe.engine.model import LockEvent, MigrationFile, Operation, ParsedOperation, Statement, StatementKind
from migration_safe.engine.review.sql import analyse, split_statements
from migration_safe.engine.sandbox.protocol import MigrationRecord, OperationRecord, Trace


def operations_from_child(file: MigrationFile, record: MigrationRecord) -> list[Operation]:
    operations = [operation_from_child(file, op) for op in record["operations"]]
    unique = set(record.get("unique_indexes", []))
    for operation in operations:
        for statement in operation.statements:
            # `DROP INDEX a, b` is parsed to its first name: a list of several may hold a plain index
            if statement.kind is StatementKind.DROP_INDEX and statement.index_name in unique \
                    and "," not in statement.sql:
                statement.unique = True
    return operations


def operation_from_child(file: MigrationFile, op: OperationRecord) -> Operation:
    parsed = matching_parsed(file, op["index"], op["type"])
    line, end_line = (parsed.line, parsed.end_line) if parsed else (file.class_line, file.class_line)
    return Operation(
        index=op["index"], type=op["type"], line=line, end_line=end_line,
        description=op["description"], parsed=parsed, reduces_to_sql=op["reduces_to_sql"],
        error=op["error"], sql_known=True, facts=op.get("facts") or {},
        statements=statements_from_child(op),
    )


def matching_parsed(file: MigrationFile, index: int, type_name: str) -> ParsedOperation | None:
    """The parsed call at the same position, if it is the same operation (lists built in code may differ)."""
    if index < len(file.operations):
        parsed = file.operations[index]
        if parsed.type == type_name or parsed.type == "Unknown":
            return parsed
    return None


def statements_from_child(op: OperationRecord) -> list[Statement]:
    texts = [(sql, False) for raw in op["statements"] for sql in split_statements(raw)]
    texts += [(sql, True) for raw in op["deferred"] for sql in split_statements(raw)]
    traces = op.get("traces") or []
    statements = []
    for position, (sql, deferred) in enumerate(texts):
        statement = analyse(sql)
        statement.deferred = deferred
        if position < len(traces):
            apply_trace(statement, traces[position])
        statements.append(statement)
    return statements


def apply_trace(statement: Statement, trace: Trace) -> None:
    statement.locks = [LockEvent(**lock) for lock in trace["locks"]]
    statement.rewrites = list(trace["rewrites"])
    statement.error = trace["error"]
    statement.executed = trace["executed"]
    statement.transactional = statement.transactional and trace["transactional"]


def operations_from_file(file: MigrationFile) -> list[Operation]:
    """Static fallback: no SQL, only what the file says."""
    return [Operation(index=p.index, type=p.type, line=p.line, end_line=p.end_line,
                      description=static_description(p), parsed=p, sql_known=False,
                      reduces_to_sql=p.type != "RunPython")
            for p in file.operations]


def static_description(parsed: ParsedOperation) -> str:
    names = [parsed.args[k].literal() for k in ("model_name", "name", "0", "1") if k in parsed.args]
    words = [n for n in names if isinstance(n, str)]
    return f"{parsed.type} {' '.join(words[:2])}".strip()
