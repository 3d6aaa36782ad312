#!/usr/bin/env python3
"""Generate a large synthetic Django project as a git repository, for benchmarks.

    python bench/generate.py OUT_DIR [--apps 350] [--per-app 26] [--seed 7] [--verify]

`main` holds the base: N apps, each with M migrations (0001_initial, then a
realistic history: AddField, AlterField, RemoveField, RenameField, AddIndex,
RemoveIndex, constraints, RunPython data migrations, late CreateModel), models
of 10-40 fields of mixed types with foreign keys to apps of a lower number
(so the app graph is acyclic), and a few squashed migrations (`replaces`) kept
beside the migrations they replace, as projects do during a transition.
`models.py` is rendered from the same simulated state the migrations build, so
`makemigrations --check` finds nothing to do.

Two branches fork from `main`: `pr10` adds 10 migrations across several apps,
`pr200` adds 200 (and each updates the models to match). The output is
deterministic for a seed: same files, same commit SHAs (fixed dates).

The generator simulates Django's state itself rather than calling Django, so
writing 9,000+ files takes seconds; `--verify` then asks Django
(`makemigrations --check` on every branch) whether the simulation was right.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

MAX_FIELDS, MIN_FIELDS = 40, 10  # per model, the primary key not counted
BRANCHES = {"pr10": 10, "pr200": 200}

APP_WORDS = ["billing", "catalog", "crm", "inventory", "shipping", "payments", "accounts", "reports",
             "support", "marketing", "orders", "pricing", "warehouse", "analytics", "alerts", "search",
             "reviews", "loyalty", "procurement", "staff", "payroll", "ledger", "tax", "returns",
             "subscriptions", "content", "media", "audit", "scheduling", "fleet"]
MODEL_WORDS = ["Invoice", "Customer", "Order", "Product", "Shipment", "Payment", "Account", "Ticket",
               "Campaign", "Supplier", "Contract", "Vendor", "Entry", "Batch", "Region", "Store", "Plan",
               "Coupon", "Review", "Asset", "Device", "Report", "Project", "Task", "Team", "Address",
               "Document", "Event", "Message", "Booking"]
FIELD_WORDS = {
    "char": ["name", "title", "code", "reference", "label", "status", "email", "phone", "city", "country",
             "currency", "slug", "sku", "external_ref", "kind", "channel", "source", "locale", "zip_code",
             "category"],
    "int": ["quantity", "position", "priority", "attempts", "score", "rank", "version", "capacity",
            "duration", "weight", "views", "level"],
    "decimal": ["amount", "price", "total", "discount", "tax_rate", "balance", "cost", "fee", "margin",
                "credit_limit"],
    "datetime": ["published_at", "closed_at", "paid_at", "expires_at", "starts_at", "ends_at", "synced_at",
                 "archived_at", "last_seen_at", "verified_at"],
    "bool": ["is_active", "is_archived", "is_public", "is_verified", "is_default", "enabled", "flagged",
             "locked", "paid", "visible"],
    "json": ["metadata", "preferences", "payload", "extra", "attributes", "tags"],
    "text": ["description", "notes", "body", "summary", "comment", "street"],
}
FIELD_CLASSES = {"char": "CharField", "int": "IntegerField", "bigint": "BigIntegerField",
                 "decimal": "DecimalField", "datetime": "DateTimeField", "bool": "BooleanField",
                 "json": "JSONField", "text": "TextField", "fk": "ForeignKey"}
# Kinds drawn for a new plain column, with their weights.
KIND_WEIGHTS = {"char": 25, "int": 15, "decimal": 10, "datetime": 10, "bool": 12, "json": 5, "text": 8}
CHAR_LENGTHS = [32, 64, 128, 255, 512]
USER = ("auth", "User")  # settings.AUTH_USER_MODEL: rendered as a swappable reference
SWAPPABLE_USER = ("__setting__", "AUTH_USER_MODEL")
PK = 'models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")'
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
           # fixed dates: the same seed gives the same SHAs
           "GIT_AUTHOR_DATE": "2025-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00Z"}


def q(text: str) -> str:
    """A Python string literal in double quotes, as makemigrations writes them."""
    return json.dumps(text)


def render_kwargs(kwargs: dict[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in kwargs.items())


# ------------------------------------------------------------------ the simulated state


@dataclass
class Field:
    name: str
    kind: str  # a key of FIELD_CLASSES
    kwargs: dict[str, str]  # keyword -> Python source of its value, without `to` and `on_delete`
    target: tuple[str, str] | None = None  # (app_label, ModelName) of a foreign key
    on_delete: str | None = None

    @property
    def nullable(self) -> bool:
        return self.kwargs.get("null") == "True"

    def migration_source(self) -> str:
        kwargs = dict(self.kwargs)
        if self.kind == "fk":
            assert self.target and self.on_delete
            kwargs["on_delete"] = f"django.db.models.deletion.{self.on_delete}"
            kwargs["to"] = ("settings.AUTH_USER_MODEL" if self.target == USER
                            else q(f"{self.target[0]}.{self.target[1].lower()}"))
        return f"models.{FIELD_CLASSES[self.kind]}({render_kwargs(dict(sorted(kwargs.items())))})"

    def model_source(self) -> str:
        kwargs = dict(sorted(self.kwargs.items()))
        if self.kind != "fk":
            return f"models.{FIELD_CLASSES[self.kind]}({render_kwargs(kwargs)})"
        assert self.target and self.on_delete
        to = "settings.AUTH_USER_MODEL" if self.target == USER else q(f"{self.target[0]}.{self.target[1]}")
        return f"models.ForeignKey({to}, on_delete=models.{self.on_delete}, {render_kwargs(kwargs)})"


@dataclass
class Index:
    name: str
    fields: list[str]

    def source(self) -> str:
        return f"models.Index(fields=[{', '.join(q(f) for f in self.fields)}], name={q(self.name)})"


@dataclass
class Constraint:
    name: str
    kind: str  # "unique" | "check"
    fields: list[str]  # a check constraint: the one field that must be >= 0

    def source(self, for_models: bool) -> str:
        if self.kind == "unique":
            return f"models.UniqueConstraint(fields=({', '.join(q(f) for f in self.fields)},), name={q(self.name)})"
        # makemigrations writes Q's children as tuples; the two forms compare equal.
        condition = (f"models.Q({self.fields[0]}__gte=0)" if for_models
                     else f"models.Q(({q(self.fields[0] + '__gte')}, 0))")
        return f"models.CheckConstraint(condition={condition}, name={q(self.name)})"


@dataclass
class Model:
    name: str
    fields: dict[str, Field]
    created_in: str  # the migration that creates it: what a foreign key to it depends on
    indexes: list[Index] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)

    def protected(self) -> set[str]:
        """Fields an index or constraint names: never removed or renamed, to keep the history simple."""
        names = {f for index in self.indexes for f in index.fields}
        return names | {f for constraint in self.constraints for f in constraint.fields}


@dataclass
class Migration:
    app: str
    name: str
    dependencies: list[tuple[str, str]]
    operations: list[str] = field(default_factory=list)  # sources, indented for the file
    helpers: list[str] = field(default_factory=list)  # module-level functions for RunPython
    replaces: list[tuple[str, str]] = field(default_factory=list)
    initial: bool = False

    def depend(self, key: tuple[str, str]) -> None:
        if key[0] != self.app and key not in self.dependencies:
            self.dependencies.append(key)

    def source(self) -> str:
        body = "\n".join(self.operations)
        uses_settings = "settings." in body or SWAPPABLE_USER in self.dependencies
        lines = ["# Generated by bench/generate.py", ""]
        if uses_settings:
            lines.append("from django.conf import settings")
        lines.append("from django.db import migrations, models")
        if "django.db.models.deletion" in body:
            lines.append("import django.db.models.deletion")
        lines += ["", ""]
        for helper in self.helpers:
            lines += [helper, "", ""]
        lines.append("class Migration(migrations.Migration):")
        if self.initial:
            lines += ["", "    initial = True"]
        if self.replaces:
            lines += ["", "    replaces = ["] + [f"        ({q(a)}, {q(n)})," for a, n in self.replaces] + ["    ]"]
        lines += ["", "    dependencies = ["]
        for dep in self.dependencies:
            lines.append("        migrations.swappable_dependency(settings.AUTH_USER_MODEL)," if dep == SWAPPABLE_USER
                         else f"        ({q(dep[0])}, {q(dep[1])}),")
        lines += ["    ]", "", "    operations = [", body, "    ]", ""]
        return "\n".join(lines)


@dataclass
class App:
    label: str
    number: int
    models: dict[str, Model] = field(default_factory=dict)
    leaf: str = ""  # name of the last migration
    count: int = 0  # migrations written (squashes not counted)
    names: int = 0  # counter for index, constraint and function names
    changed: bool = False  # models.py must be rewritten on the branch being generated

    def next_name(self) -> int:
        self.names += 1
        return self.names

    def models_source(self) -> str:
        uses_settings = any(f.target == USER for m in self.models.values() for f in m.fields.values())
        lines = ["from django.conf import settings"] if uses_settings else []
        lines += ["from django.db import models", ""]
        for model in self.models.values():
            lines += ["", f"class {model.name}(models.Model):"]
            lines += [f"    {f.name} = {f.model_source()}" for f in model.fields.values()]
            if model.indexes or model.constraints:
                lines += ["", "    class Meta:"]
                if model.indexes:
                    lines += ["        indexes = ["] + [f"            {i.source()}," for i in model.indexes]
                    lines.append("        ]")
                if model.constraints:
                    lines += ["        constraints = ["]
                    lines += [f"            {c.source(for_models=True)}," for c in model.constraints]
                    lines.append("        ]")
        return "\n".join(lines) + "\n"


def op(kind: str, /, **kwargs: str) -> str:
    """An operation as makemigrations lays it out (one keyword a line)."""
    lines = [f"        migrations.{kind}("] + [f"            {k}={v}," for k, v in kwargs.items()]
    return "\n".join(lines + ["        ),"])


def create_model_source(model: Model) -> str:
    fields = [f'                ("id", {PK}),']
    fields += [f"                ({q(f.name)}, {f.migration_source()})," for f in model.fields.values()]
    return "\n".join(["        migrations.CreateModel(", f"            name={q(model.name)},",
                      "            fields=[", *fields, "            ],", "        ),"])


# ------------------------------------------------------------------ the generator


class Generator:
    """Builds apps and their migrations on a simulated state, one app after the other."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.apps: list[App] = []

    # ---- fields

    def field_name(self, model: Model, base: str) -> str:
        name, n = base, 2
        while name in model.fields:
            name, n = f"{base}_{n}", n + 1
        return name

    def plain_field(self, model: Model, kind: str | None = None, new_table: bool = True) -> Field:
        """A column of a random kind; on an existing table, nullable or with a default (as makemigrations
        would require without asking)."""
        rng = self.rng
        kind = kind or rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
        name = self.field_name(model, rng.choice(FIELD_WORDS[kind]))
        variants: dict[str, list[dict[str, str]]] = {
            "char": [{"max_length": str(rng.choice(CHAR_LENGTHS))}] * (3 if new_table else 0) + [
                {"blank": "True", "default": '""', "max_length": str(rng.choice(CHAR_LENGTHS))},
                {"blank": "True", "max_length": str(rng.choice(CHAR_LENGTHS)), "null": "True"},
                {"db_index": "True", "default": '""', "max_length": str(rng.choice(CHAR_LENGTHS))}],
            "int": [{}] * (2 if new_table else 0) + [{"default": "0"}, {"blank": "True", "null": "True"}],
            "decimal": [{"decimal_places": "2", "default": "0", "max_digits": "12"},
                        {"blank": "True", "decimal_places": "2", "max_digits": "12", "null": "True"}],
            "datetime": [{"auto_now_add": "True"}, {"auto_now": "True"}] * (1 if new_table else 0) + [
                {"blank": "True", "null": "True"}, {"db_index": "True", "null": "True"}],
            "bool": [{"default": "False"}, {"default": "True"}],
            "json": [{"blank": "True", "default": "dict"}, {"blank": "True", "null": "True"}],
            "text": [{"blank": "True", "default": '""'}, {"blank": "True", "null": "True"}],
        }
        return Field(name, kind, dict(rng.choice(variants[kind])))

    def fk_target(self, app: App, same_app: list[Model]) -> tuple[App | None, Model | None, tuple[str, str]]:
        """A model in an app of a lower number (acyclic), in the same app, or the user model."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.15:
            return None, None, USER
        if (roll < 0.35 or app.number == 0) and same_app:
            model = rng.choice(same_app)
            return app, model, (app.label, model.name)
        if app.number == 0:
            return None, None, USER
        other = self.apps[rng.randrange(app.number)]
        model = rng.choice(list(other.models.values()))
        return other, model, (other.label, model.name)

    def fk_field(self, app: App, model: Model, migration: Migration, same_app: list[Model],
                 new_table: bool) -> Field:
        target_app, target, key = self.fk_target(app, same_app)
        base = "owner" if key == USER else key[1].lower()
        name = self.field_name(model, base)
        if new_table and self.rng.random() < 0.6:
            kwargs, on_delete = {}, self.rng.choice(["CASCADE", "PROTECT"])
        else:
            kwargs, on_delete = {"blank": "True", "null": "True"}, "SET_NULL"
        # Explicit and unique: models of the same name in two apps may point at one target.
        kwargs["related_name"] = q(f"{app.label}_{model.name.lower()}_{name}_set")
        if key == USER:
            migration.depend(SWAPPABLE_USER)
        elif target_app is not None and target is not None:
            migration.depend((target_app.label, target.created_in))
        return Field(name, "fk", kwargs, key, on_delete)

    # ---- models

    def new_model(self, app: App, migration: Migration, fk_targets: list[Model]) -> Model:
        rng = self.rng
        taken = set(app.models)
        name = rng.choice([w for w in MODEL_WORDS if w not in taken] or [f"Item{len(taken)}"])
        model = Model(name, {}, migration.name)
        for _ in range(rng.randint(0, 2) + (1 if rng.random() < 0.3 else 0)):
            fk = self.fk_field(app, model, migration, fk_targets, new_table=True)
            model.fields[fk.name] = fk
        if rng.random() < 0.7:
            model.fields["created_at"] = Field("created_at", "datetime", {"auto_now_add": "True"})
        size = rng.randint(MIN_FIELDS, 30)
        while len(model.fields) < size:
            column = self.plain_field(model)
            model.fields[column.name] = column
        return model

    def initial(self, app: App) -> Migration:
        migration = Migration(app.label, "0001_initial", [], initial=True)
        created: list[Model] = []
        for _ in range(self.rng.choice([2, 3, 3, 4])):
            model = self.new_model(app, migration, created)
            created.append(model)
            app.models[model.name] = model
            migration.operations.append(create_model_source(model))
        return migration

    # ---- operations on an existing state: each returns a slug for the name, or None if it does not apply

    def pick(self, app: App) -> Model:
        return self.rng.choice(list(app.models.values()))

    def op_add_field(self, app: App, m: Migration) -> str | None:
        model = self.pick(app)
        if len(model.fields) >= MAX_FIELDS:
            return None
        column = self.plain_field(model, new_table=False)
        model.fields[column.name] = column
        m.operations.append(op("AddField", model_name=q(model.name.lower()), name=q(column.name),
                               field=column.migration_source()))
        return f"{model.name.lower()}_{column.name}"

    def op_add_required_field(self, app: App, m: Migration) -> str | None:
        """NOT NULL without a default in the model: the migration carries a one-off default."""
        model = self.pick(app)
        if len(model.fields) >= MAX_FIELDS:
            return None
        kind = self.rng.choice(["char", "int", "bool"])
        name = self.field_name(model, self.rng.choice(FIELD_WORDS[kind]))
        kwargs = {"char": {"max_length": "64"}, "int": {}, "bool": {}}[kind]
        once = {"char": '"unknown"', "int": "0", "bool": "False"}[kind]
        column = Field(name, kind, dict(kwargs))
        with_default = Field(name, kind, {**kwargs, "default": once})
        model.fields[name] = column
        m.operations.append(op("AddField", model_name=q(model.name.lower()), name=q(name),
                               field=with_default.migration_source(), preserve_default="False"))
        return f"{model.name.lower()}_{name}"

    def op_add_fk(self, app: App, m: Migration) -> str | None:
        model = self.pick(app)
        if len(model.fields) >= MAX_FIELDS:
            return None
        others = [x for x in app.models.values() if x is not model]
        fk = self.fk_field(app, model, m, others, new_table=False)
        model.fields[fk.name] = fk
        m.operations.append(op("AddField", model_name=q(model.name.lower()), name=q(fk.name),
                               field=fk.migration_source()))
        return f"{model.name.lower()}_{fk.name}"

    def op_alter_field(self, app: App, m: Migration) -> str | None:
        model = self.pick(app)
        candidates = [f for f in model.fields.values() if f.kind != "fk"]
        if not candidates:
            return None
        column = self.rng.choice(candidates)
        kw = column.kwargs
        if column.kind == "char":
            if kw["max_length"] == str(CHAR_LENGTHS[-1]):
                return None
            kw["max_length"] = str(CHAR_LENGTHS[CHAR_LENGTHS.index(int(kw["max_length"])) + 1])
        elif column.kind == "int" and column.nullable:
            del kw["null"]
            kw.pop("blank", None)
            kw["default"] = "0"  # SET NOT NULL: a classic risky change
        elif column.kind == "int":
            column.kind = "bigint"  # a type change: rewrites the table
        elif column.kind == "decimal" and int(kw["max_digits"]) < 18:
            kw["max_digits"] = str(int(kw["max_digits"]) + 2)
        elif column.kind in ("datetime", "bigint") and "db_index" not in kw and "auto_now" not in kw \
                and "auto_now_add" not in kw:
            kw["db_index"] = "True"
        elif column.kind == "text" and column.nullable:
            kw.pop("null")
            kw["default"] = '""'
        elif column.kind == "bool":
            kw["default"] = "True" if kw["default"] == "False" else "False"
        else:
            return None
        column.kwargs = dict(sorted(kw.items()))
        m.operations.append(op("AlterField", model_name=q(model.name.lower()), name=q(column.name),
                               field=column.migration_source()))
        return f"alter_{model.name.lower()}_{column.name}"

    def op_remove_field(self, app: App, m: Migration) -> str | None:
        model = self.pick(app)
        candidates = [f for f in model.fields if f not in model.protected()]
        if len(model.fields) <= MIN_FIELDS or not candidates:
            return None
        name = self.rng.choice(candidates)
        del model.fields[name]
        m.operations.append(op("RemoveField", model_name=q(model.name.lower()), name=q(name)))
        return f"remove_{model.name.lower()}_{name}"

    def op_rename_field(self, app: App, m: Migration) -> str | None:
        model = self.pick(app)
        candidates = [f for f in model.fields.values() if f.kind != "fk" and f.name not in model.protected()]
        if not candidates:
            return None
        column = self.rng.choice(candidates)
        new = self.field_name(model, self.rng.choice(["internal", "legacy", "display", "primary"]) + "_" + column.name)
        if len(new) > 40:
            return None
        model.fields = {(new if k == column.name else k): v for k, v in model.fields.items()}
        m.operations.append(op("RenameField", model_name=q(model.name.lower()), old_name=q(column.name),
                               new_name=q(new)))
        column.name = new
        return f"rename_{column.name}"

    def indexable(self, model: Model) -> list[str]:
        return [f.name for f in model.fields.values() if f.kind not in ("json", "text")]

    def op_add_index(self, app: App, m: Migration) -> str | None:
        model = self.pick(app)
        names = self.indexable(model)
        if not names or len(model.indexes) >= 4:
            return None
        fields = self.rng.sample(names, min(len(names), self.rng.choice([1, 1, 2])))
        index = Index(f"{model.name.lower()[:8]}_{fields[0][:8]}_{app.number:03d}_{app.next_name():02d}_ix", fields)
        assert len(index.name) <= 30, index.name  # Django's limit for index names
        model.indexes.append(index)
        m.operations.append(op("AddIndex", model_name=q(model.name.lower()), index=index.source()))
        return f"{model.name.lower()}_{fields[0]}_idx"

    def op_remove_index(self, app: App, m: Migration) -> str | None:
        model = self.pick(app)
        if not model.indexes:
            return None
        index = model.indexes.pop(self.rng.randrange(len(model.indexes)))
        m.operations.append(op("RemoveIndex", model_name=q(model.name.lower()), name=q(index.name)))
        return f"remove_{model.name.lower()}_{index.fields[0]}_idx"

    def op_add_constraint(self, app: App, m: Migration) -> str | None:
        model = self.pick(app)
        if len(model.constraints) >= 3:
            return None
        numbers = [f.name for f in model.fields.values() if f.kind in ("int", "bigint", "decimal")]
        if numbers and self.rng.random() < 0.5:
            constraint = Constraint(f"{model.name.lower()}_{app.number:03d}_{app.next_name()}_ck", "check",
                                    [self.rng.choice(numbers)])
        else:
            names = self.indexable(model)
            if len(names) < 2:
                return None
            constraint = Constraint(f"{model.name.lower()}_{app.number:03d}_{app.next_name()}_uq", "unique",
                                    self.rng.sample(names, 2))
        model.constraints.append(constraint)
        m.operations.append(op("AddConstraint", model_name=q(model.name.lower()),
                               constraint=constraint.source(for_models=False)))
        return f"{model.name.lower()}_{constraint.kind}"

    def op_run_python(self, app: App, m: Migration) -> str | None:
        model = self.pick(app)
        candidates = [f for f in model.fields.values() if f.kind not in ("fk", "json")]
        if not candidates:
            return None
        column = self.rng.choice(candidates)
        function = f"backfill_{m.name[:4]}_{app.next_name()}"
        value = {"char": '""', "text": '""', "int": "0", "bigint": "0", "decimal": "0", "bool": "False",
                 "datetime": "None"}[column.kind]
        get = f"    {model.name} = apps.get_model({q(app.label)}, {q(model.name)})"
        if column.nullable and value != "None":
            body = [get, f"    {model.name}.objects.filter({column.name}__isnull=True).update({column.name}={value})"]
        else:  # row by row, as data migrations that call model logic do
            body = [get, f"    for row in {model.name}.objects.all().iterator(chunk_size=500):",
                    f"        row.save(update_fields=[{q(column.name)}])"]
        m.helpers.append("\n".join([f"def {function}(apps, schema_editor):", *body]))
        m.operations.append(op("RunPython", code=function, reverse_code="migrations.RunPython.noop"))
        return f"backfill_{model.name.lower()}_{column.name}"

    def op_run_sql(self, app: App, m: Migration) -> str | None:
        model = self.pick(app)
        bools = [f.name for f in model.fields.values() if f.kind == "bool"]
        if not bools:
            return None
        column = self.rng.choice(bools)
        table = f"{app.label}_{model.name.lower()}"
        sql = q(f'UPDATE "{table}" SET "{column}" = false WHERE "{column}" IS NULL')
        m.operations.append(op("RunSQL", sql=sql, reverse_sql="migrations.RunSQL.noop"))
        return f"fix_{model.name.lower()}_{column}"

    def op_create_model(self, app: App, m: Migration) -> str | None:
        if len(app.models) >= 6:
            return None
        model = self.new_model(app, m, list(app.models.values()))
        app.models[model.name] = model
        m.operations.append(create_model_source(model))
        return model.name.lower()

    HISTORY: ClassVar[dict[str, int]] = {"op_add_field": 32, "op_add_fk": 6, "op_alter_field": 15, "op_add_index": 12,
               "op_add_constraint": 8, "op_run_python": 10, "op_remove_field": 8, "op_rename_field": 2,
               "op_remove_index": 3, "op_create_model": 4}
    # What a pull request adds: more data migrations and risky changes than the history.
    PULL_REQUEST: ClassVar[dict[str, int]] = {"op_add_field": 22, "op_add_required_field": 8, "op_add_fk": 6, "op_alter_field": 15,
                    "op_add_index": 14, "op_add_constraint": 6, "op_run_python": 12, "op_run_sql": 3,
                    "op_remove_field": 8, "op_rename_field": 3, "op_create_model": 3}

    def migration(self, app: App, weights: dict[str, int]) -> Migration:
        """The next migration of `app`: 1-3 operations drawn from `weights`."""
        number = app.count + 1
        # The name comes from the first operation; until then the number stands in for it
        # (RunPython helpers and new models' `created_in` read it).
        m = Migration(app.label, f"{number:04d}", [(app.label, app.leaf)])
        slugs: list[str] = []
        wanted = self.rng.choices([1, 2, 3], weights=[5, 3, 2])[0]
        while len(slugs) < wanted:
            name = self.rng.choices(list(weights), weights=list(weights.values()))[0]
            slug = getattr(self, name)(app, m)
            if slug:
                slugs.append(slug)
        provisional = m.name
        m.name = f"{number:04d}_{slugs[0][:40]}" + ("_and_more" if len(slugs) > 1 else "")
        for model in app.models.values():
            if model.created_in == provisional:
                model.created_in = m.name
        app.count, app.leaf, app.changed = number, m.name, True
        return m

    def squash(self, migrations: list[Migration]) -> Migration:
        """One migration that replaces `migrations` (their operations concatenated, still valid)."""
        first, last = migrations[0], migrations[-1]
        replaced = {(x.app, x.name) for x in migrations}
        squashed = Migration(first.app, f"0001_squashed_{last.name}", [], initial=True,
                             replaces=sorted(replaced))
        for x in migrations:
            for dep in x.dependencies:
                if dep not in replaced:
                    squashed.depend(dep)
            squashed.operations += x.operations
            squashed.helpers += x.helpers
        return squashed

    def base_app(self, number: int, per_app: int) -> tuple[App, list[Migration]]:
        app = App(f"{APP_WORDS[number % len(APP_WORDS)]}_{number:03d}", number)
        self.apps.append(app)
        first = self.initial(app)
        app.leaf, app.count = first.name, 1
        migrations = [first] + [self.migration(app, self.HISTORY) for _ in range(per_app - 1)]
        if number % 40 == 5 and per_app >= 5:  # a few apps are mid-way through a squash
            migrations.append(self.squash(migrations[:4]))
        return app, migrations


# ------------------------------------------------------------------ the project on disk


MANAGE_PY = '''#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
'''

SETTINGS = '''"""Synthetic project for migration-safe's benchmarks (bench/generate.py)."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "bench-only-not-a-secret"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PROJECT_APPS = [
{apps}
]
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", *PROJECT_APPS]

# PostgreSQL from the environment (bench/run.py points it at a throwaway database;
# migration-safe replaces DATABASES with its own anyway).
DATABASES = {{
    "default": {{
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("BENCH_DB_NAME", "bench"),
        "USER": os.environ.get("BENCH_DB_USER", ""),
        "PASSWORD": os.environ.get("BENCH_DB_PASSWORD", ""),
        "HOST": os.environ.get("BENCH_DB_HOST", ""),
        "PORT": os.environ.get("BENCH_DB_PORT", ""),
    }}
}}
'''

SETTINGS_SQLITE = '''"""No server needed: makemigrations --check and other read-only commands."""
from .settings import *  # noqa: F401,F403

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
'''

SETTINGS_LINT = '''"""django-migration-linter: it only reads migrations (sqlmigrate on SQLite)."""
from .settings_sqlite import *  # noqa: F401,F403

INSTALLED_APPS = [*INSTALLED_APPS, "django_migration_linter"]  # noqa: F405
'''


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def write_migrations(root: Path, migrations: list[Migration]) -> None:
    for m in migrations:
        write(root / m.app / "migrations" / f"{m.name}.py", m.source())


def write_base(root: Path, apps: list[App], migrations: list[Migration]) -> None:
    write(root / "manage.py", MANAGE_PY)
    write(root / ".gitignore", "__pycache__/\n*.pyc\n*.sqlite3\n")
    write(root / "benchsite" / "__init__.py", "")
    write(root / "benchsite" / "settings.py",
          SETTINGS.format(apps="\n".join(f"    {q(a.label)}," for a in apps)))
    write(root / "benchsite" / "settings_sqlite.py", SETTINGS_SQLITE)
    write(root / "benchsite" / "settings_lint.py", SETTINGS_LINT)
    for app in apps:
        write(root / app.label / "__init__.py", "")
        write(root / app.label / "migrations" / "__init__.py", "")
        write(root / app.label / "models.py", app.models_source())
    write_migrations(root, migrations)


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False,
                          env={**os.environ, **GIT_ENV})
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def commit(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-verify", "-m", message)
    return git(root, "rev-parse", "HEAD")


def spread(rng: random.Random, apps: list[App], count: int) -> list[App]:
    """Which app each new migration goes to: several apps, some with more than one."""
    chosen = rng.sample(apps, min(len(apps), max(1, round(count * 0.6))))
    order = [chosen[i % len(chosen)] for i in range(count)]
    return sorted(order, key=lambda a: a.number)  # an app's migrations stay in sequence


def generate(out: Path, n_apps: int, per_app: int, seed: int) -> dict:
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    generator = Generator(random.Random(seed))
    migrations: list[Migration] = []
    for number in range(n_apps):
        migrations += generator.base_app(number, per_app)[1]
    write_base(out, generator.apps, migrations)
    git(out, "init", "-q", "-b", "main")
    base = commit(out, f"base: {n_apps} apps, {len(migrations)} migrations")

    branches: dict[str, dict] = {}
    for branch, count in BRANCHES.items():
        # Each branch forks from the base state; its own RNG keeps it independent of the other.
        rng = random.Random(f"{seed}-{branch}")
        fork = Generator(rng)
        fork.apps = copy.deepcopy(generator.apps)
        for app in fork.apps:
            app.changed = False
        added = [fork.migration(app, Generator.PULL_REQUEST) for app in spread(rng, fork.apps, count)]
        git(out, "checkout", "-q", "-b", branch, "main")
        write_migrations(out, added)
        for app in fork.apps:
            if app.changed:
                write(out / app.label / "models.py", app.models_source())
        sha = commit(out, f"{branch}: {count} new migrations")
        branches[branch] = {"sha": sha, "migrations": [f"{m.app}.{m.name}" for m in added],
                            "apps": len({m.app for m in added})}
        git(out, "checkout", "-q", "main")
    return {"project": str(out), "base": base, "base_branch": "main", "branches": branches,
            "apps": n_apps, "migration_files": len(migrations),
            "squashed": sum(1 for m in migrations if m.replaces),
            "models": sum(len(a.models) for a in generator.apps),
            "seconds": round(time.monotonic() - started, 2)}


def verify(out: Path, branches: list[str], python: str) -> bool:
    """makemigrations --check on each branch: Django agrees the models match the migrations."""
    ok = True
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchsite.settings_sqlite", "PYTHONDONTWRITEBYTECODE": "1"}
    for branch in branches:
        git(out, "checkout", "-q", branch)
        started = time.monotonic()
        done = subprocess.run([python, "manage.py", "makemigrations", "--check", "--dry-run"],
                              cwd=out, env=env, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
        verdict = "clean" if done.returncode == 0 else f"NOT clean (exit {done.returncode})"
        print(f"verify {branch}: makemigrations --check {verdict} in {seconds:.1f}s", file=sys.stderr)
        if done.returncode != 0:
            ok = False
            print((done.stdout + done.stderr)[-4000:], file=sys.stderr)
    git(out, "checkout", "-q", "main")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to create (must not exist or be empty)")
    parser.add_argument("--apps", type=int, default=350)
    parser.add_argument("--per-app", type=int, default=26, help="migrations per app, 0001_initial included")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verify", action="store_true",
                        help="then run `manage.py makemigrations --check` on main and on each branch")
    parser.add_argument("--python", default=sys.executable, help="interpreter with Django, for --verify")
    args = parser.parse_args(argv)
    if args.apps < 1 or args.per_app < 1:
        parser.error("--apps and --per-app must be at least 1")
    summary = generate(args.out.resolve(), args.apps, args.per_app, args.seed)
    print(json.dumps(summary if len(summary["branches"]["pr200"]["migrations"]) < 20 else
                     {**summary, "branches": {b: {k: v for k, v in info.items() if k != "migrations"}
                                              for b, info in summary["branches"].items()}}, indent=2))
    if args.verify and not verify(args.out.resolve(), ["main", *BRANCHES], args.python):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
