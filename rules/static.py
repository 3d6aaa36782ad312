"""What the file alone tells, for when the sandbox produced no SQL."""
from __future__ import annotations

import ast
from typing import Iterator

from migration_safe.engine.model import Operation, ParsedOperation

from .context import MigrationContext

INDEX_TYPES = {"AddIndex": "an index", "AlterUniqueTogether": "unique indexes",
               "AlterIndexTogether": "indexes"}


def model_is_new(ctx: MigrationContext, operation: Operation) -> bool:
    """The operation's model is created by a migration of this review."""
    return _on_new_model(ctx, operation.parsed)


def _on_new_model(ctx: MigrationContext, parsed: ParsedOperation | None) -> bool:
    # model_name: field and index operations; name: model operations; old_name: RenameModel
    model = parsed.arg("model_name", "name", "old_name", position=0) if parsed else None
    name = model.literal() if model else None
    return isinstance(name, str) and f"{ctx.migration.app_label}.{name.lower()}" in ctx.new_models


def index_building_operations(ctx: MigrationContext) -> Iterator[tuple[Operation, str]]:
    for operation in ctx.operations:
        if operation.parsed is None or model_is_new(ctx, operation):
            continue
        if operation.type in INDEX_TYPES:
            yield operation, INDEX_TYPES[operation.type]
        elif operation.type == "AddConstraint" and "UniqueConstraint" in _code(operation, "constraint", 1):
            yield operation, "a unique index"
        elif operation.type in ("AddField", "AlterField"):
            field = _code(operation, "field", 2).replace(" ", "")
            # a OneToOneField is a ForeignKey with unique=True: it always builds an index
            if "db_index=True" in field or "unique=True" in field or "OneToOneField(" in field or (
                    "ForeignKey(" in field and "db_index=False" not in field):
                yield operation, "an index for the field"


def _code(operation: Operation, name: str, position: int) -> str:
    arg = operation.parsed.arg(name, position=position) if operation.parsed else None
    return arg.code if arg else ""


# Operations whose whole database effect the file alone settles: what they do to an existing table
# (if anything) cannot lock it for long, rewrite, scan or break running code. README lists them.
STATE_ONLY = {"AlterModelOptions", "AlterModelManagers"}
# Field types whose nullable column is added instantly: no index, no CHECK, no sequence, no
# expression (a Positive*Field adds a CHECK that scans the table; a SlugField, an index).
PLAIN_FIELDS = {
    "BigIntegerField", "BinaryField", "BooleanField", "CharField", "DateField", "DateTimeField",
    "DecimalField", "DurationField", "EmailField", "FileField", "FilePathField", "FloatField",
    "GenericIPAddressField", "ImageField", "IntegerField", "JSONField", "SmallIntegerField",
    "TextField", "TimeField", "URLField", "UUIDField",
}
INDEXING_KEYWORDS = {"db_index", "unique", "primary_key"}


def settled_statically(ctx: MigrationContext) -> bool:
    """Every operation of the migration is one whose database effect the file settles for certain."""
    return all(_settled(ctx, op.parsed) for op in ctx.operations) if ctx.operations else True


def _settled(ctx: MigrationContext, parsed: ParsedOperation | None) -> bool:
    if parsed is None:
        return False
    if parsed.type == "SeparateDatabaseAndState":
        return all(_settled(ctx, op) for op in parsed.nested.get("database_operations", []))
    if parsed.type in STATE_ONLY or parsed.type == "CreateModel":
        return True
    if parsed.type in ("RunSQL", "RunPython"):
        return False  # code: only running it tells what it does
    if _on_new_model(ctx, parsed):
        return True  # a table this change creates: empty, and no running code uses it
    if parsed.type == "AddField":
        field = parsed.arg("field", position=2)
        return field is not None and plain_nullable_field(field.code)
    return False


def plain_nullable_field(code: str) -> bool:
    """`models.CharField(max_length=30, null=True)`: a plain type, nullable, no index, no db_default."""
    call = field_call(code)
    if call is None:
        return False
    name, keywords = call
    if name not in {f"models.{n}" for n in PLAIN_FIELDS} or None in keywords \
            or keywords.keys() & {"db_default", "db_collation"}:
        # a class of another module may add anything, **kwargs may say anything, a db_default may be
        # volatile or generated, a collation may not exist in production
        return False
    return is_constant(keywords.get("null"), True) and all(
        is_constant(keywords[k], False) for k in INDEXING_KEYWORDS & keywords.keys())


def field_call(code: str) -> tuple[str, dict[str | None, ast.expr]] | None:
    """(callee as written, keyword arguments) of a field written as a call:
    `models.IntegerField(null=True)` -> ("models.IntegerField", {"null": Constant(True)})."""
    try:
        call = ast.parse(code.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if not isinstance(call, ast.Call):
        return None
    return ast.unparse(call.func), {k.arg: k.value for k in call.keywords}


def is_constant(node: ast.expr | None, value) -> bool:
    return isinstance(node, ast.Constant) and node.value is value
