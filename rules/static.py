"""What the file alone tells, for when the sandbox produced no SQL."""
from __future__ import annotations

from typing import Iterator

from migration_safe.engine.model import Operation

from .context import MigrationContext

INDEX_TYPES = {"AddIndex": "an index", "AlterUniqueTogether": "unique indexes",
               "AlterIndexTogether": "indexes"}


def model_is_new(ctx: MigrationContext, operation: Operation) -> bool:
    """The operation's model is created by a migration of this review."""
    parsed = operation.parsed
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
