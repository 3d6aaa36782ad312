"""Runs inside the project's own interpreter, on the project's own code.

Self-contained on purpose: it may run under a Python that has only the
project's dependencies (Django and a PostgreSQL driver), so it imports
nothing of migration-safe. It reads one JSON request (path in argv[1]),
writes one JSON answer (path in argv[2]) and prints nothing of its own.

Steps: load settings with DATABASES pointed at the throwaway database,
load the migration graph once, build the schema of the state just before
the new migrations from that state (not by replaying history), then for
each new migration collect every operation's SQL through the same path as
`manage.py sqlmigrate` and execute it in a rolled-back transaction while
recording the locks and rewrites it causes, before applying it for the
next migration to build on.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback

# SQLSTATE 25001: "cannot run inside a transaction block" (CONCURRENTLY, VACUUM…)
ACTIVE_SQL_TRANSACTION = "25001"

LOCKS_SQL = """
SELECT l.relation::bigint, l.mode FROM pg_locks l
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
"""

RELATIONS_SQL = """
SELECT c.oid::bigint, c.relname, c.relkind, c.relfilenode::bigint, ic.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_class ic ON ic.oid = i.indrelid
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg_temp%'
"""

COLUMNS_SQL = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
  AND pg_table_is_visible(c.oid)
"""

CHECKS_SQL = """
SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
WHERE c.relname = %s AND k.contype = 'c' AND k.convalidated AND pg_table_is_visible(c.oid)
"""

# Operations whose SQL involves only their own table and the tables their new fields point to:
# the models that reference theirs need not be in the state (Django would re-render them all).
LOCAL_OPERATIONS = {"AddField", "AddIndex", "AddIndexConcurrently", "AddConstraint", "CreateModel",
                    "AlterModelOptions", "AlterModelManagers", "AlterIndexTogether", "RemoveIndex",
                    "RemoveIndexConcurrently", "RenameIndex", "AlterModelTableComment"}

SCHEMA_BATCH = 200  # statements per round trip when building the pre-state schema

RELKINDS = {"r": "table", "p": "table", "i": "index", "I": "index", "S": "sequence",
            "v": "view", "m": "view"}


class Fatal(Exception):
    def __init__(self, stage, exc):
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.stage = stage
        self.tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])


def main(argv):
    with open(argv[1], encoding="utf-8") as fh:
        request = json.load(fh)
    try:
        answer = review(request)
    except Fatal as fatal:
        answer = {"fatal": {"stage": fatal.stage, "error": str(fatal), "traceback": fatal.tb}}
    except Exception as exc:  # a bug here or a hostile project: still answer
        fatal = Fatal("review", exc)
        answer = {"fatal": {"stage": fatal.stage, "error": str(fatal), "traceback": fatal.tb}}
    with open(argv[2], "w", encoding="utf-8") as fh:
        json.dump(answer, fh)
    return 0


# ------------------------------------------------------------------ setup


def setup_django(request):
    root = request["root"]
    os.chdir(root)
    sys.path.insert(0, root)
    os.environ["DJANGO_SETTINGS_MODULE"] = request["settings"]
    try:
        from django.conf import settings

        configured = dict(settings.DATABASES)
    except Exception as exc:  # the project's settings raise: report, never crash
        raise Fatal("settings", exc) from exc
    settings.DATABASES = {alias: throwaway_database(cfg, request["database"])
                          for alias, cfg in (configured or {"default": {}}).items()}
    try:
        import django

        django.setup()
    except Exception as exc:
        raise Fatal("import", exc) from exc
    memoize_swappable_names()


def memoize_swappable_names():
    """Django caches this lookup on the function, shared by every app registry, and each model a
    migration state renders clears it: each re-rendered foreign key then scans every model of the
    project again. The project's own registry does not change once set up."""
    from django.apps import apps

    lookup, answers = apps.get_swappable_settings_name, {}

    def get_swappable_settings_name(to_string):
        if to_string not in answers:
            answers[to_string] = lookup(to_string)
        return answers[to_string]

    get_swappable_settings_name.cache_clear = answers.clear  # Apps.clear_cache() calls it
    apps.get_swappable_settings_name = get_swappable_settings_name


def throwaway_database(configured, target):
    engine = configured.get("ENGINE") or ""
    # Keep PostGIS and other PostgreSQL-family backends: their schema editors differ.
    if "postg" not in engine:
        engine = "django.db.backends.postgresql"
    return {"ENGINE": engine, "NAME": target["name"], "USER": target["user"],
            "PASSWORD": target.get("password", ""), "HOST": target["host"],
            "PORT": str(target.get("port") or ""), "OPTIONS": {}, "TEST": {}}


def load_graph():
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    try:
        loader = MigrationLoader(None, ignore_no_migrations=True)
    except Exception as exc:  # circular or missing dependencies, bad migration modules
        raise Fatal("graph", exc) from exc
    return connection, loader


def node_files(loader):
    files = {}
    for key, migration in loader.disk_migrations.items():
        module = sys.modules.get(migration.__module__)
        path = getattr(module, "__file__", None)
        if path:
            files[os.path.realpath(path)] = key
    return files


# ------------------------------------------------------------------ pre-state


def pre_state(loader, targets):
    """State with every migration applied except the targets and what depends on them."""
    from django.db.migrations.state import ProjectState

    graph = loader.graph
    excluded = set()
    for target in targets:
        excluded.update(graph.backwards_plan(target))  # target and all that depend on it
    remaining = set(graph.nodes) - excluded
    leaves = [n for n in remaining
              if not any(child.key in remaining for child in graph.node_map[n].children)]
    return make_state(graph, sorted(leaves), loader.unmigrated_apps), remaining


def make_state(graph, leaves, real_apps):
    """MigrationGraph.make_state(leaves, at_end=True), without its two quadratic costs at thousands
    of migrations: the plan is deduplicated with a set (Django searches a list), and AlterField
    does not ask whether other models reference the field, which only decides how to re-render
    models that are not rendered yet (state.apps is built once, afterwards)."""
    from django.db.migrations import state as state_module

    plan, seen = [], set()
    for leaf in leaves:
        for key in graph.forwards_plan(leaf):
            if key not in seen:
                seen.add(key)
                plan.append(key)
    project_state = state_module.ProjectState(real_apps=real_apps)
    original = state_module.field_is_referenced
    state_module.field_is_referenced = unrendered_shortcut(original)
    try:
        for key in plan:
            project_state = graph.nodes[key].mutate_state(project_state, preserve=False)
    finally:
        state_module.field_is_referenced = original
    return project_state


def unrendered_shortcut(field_is_referenced):
    def check(state, model_tuple, field_tuple):
        if "apps" not in state.__dict__:  # reload_model() is a no-op then: the answer is unused
            return False
        return field_is_referenced(state, model_tuple, field_tuple)

    return check


def build_schema(connection, loader, state, applied):
    """Create the tables of `state` directly from its models (like syncdb), in one round trip."""
    create_extensions(connection, loader, applied)
    apps = state.apps
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        for model in apps.get_models(include_auto_created=False):
            meta = model._meta
            if meta.managed and not meta.proxy and not meta.swapped:
                editor.create_model(model)
    # In batches: one transaction for thousands of tables would exceed max_locks_per_transaction.
    with connection.cursor() as cursor:
        for start in range(0, len(editor.collected_sql), SCHEMA_BATCH):
            cursor.execute("\n".join(editor.collected_sql[start:start + SCHEMA_BATCH]))


def create_extensions(connection, loader, applied):
    try:
        from django.contrib.postgres.operations import CreateExtension
    except Exception:
        return
    names = {op.name for key in applied for op in loader.graph.nodes[key].operations
             if isinstance(op, CreateExtension)}
    for name in sorted(names):
        with connection.cursor() as cursor:
            try:
                cursor.execute("CREATE EXTENSION IF NOT EXISTS %s" % connection.ops.quote_name(name))
            except Exception:
                pass  # untrusted extensions need a superuser: the statements that use it will say so


# ------------------------------------------------------------------ which tables the change needs


def needed_models(loader, targets, state, runsql_tables):
    """Models the new migrations need, or None when that cannot be known: those they touch, the
    ones these reference and the ones referencing them (their foreign keys take locks and follow
    renames), and the concrete parents of all of these."""
    from django.db.migrations.utils import resolve_relation

    by_table = {m.options.get("db_table") or f"{k[0]}_{k[1]}": k for k, m in state.models.items()}
    operations = [op for key in targets for op in database_operations(loader.graph.nodes[key].operations)]
    if sum(type(op).__name__ == "RunSQL" for op in operations) != runsql_tables.get("count", 0):
        return None  # RunSQL the parent did not read (operations built in code): tables unknown
    touched, referenced_by_others = set(), set()
    for key in targets:
        for operation in database_operations(loader.graph.nodes[key].operations):
            keys = operation_models(operation, key[0], resolve_relation, by_table, runsql_tables)
            if keys is None:
                return None
            touched |= keys
            if type(operation).__name__ not in LOCAL_OPERATIONS:
                referenced_by_others |= keys
    needed = set(touched)
    for key, model_state in state.models.items():
        referenced = references(model_state, key, resolve_relation)
        if key in touched:
            needed |= referenced
        elif referenced & referenced_by_others:
            needed.add(key)
    return with_parents(state, needed & state.models.keys(), resolve_relation)


def with_parents(state, keys, resolve_relation):
    needed, pending = set(), list(keys)
    while pending:
        key = pending.pop()
        if key in needed or key not in state.models:
            continue
        needed.add(key)
        pending.extend(resolve_relation(base, *key) for base in state.models[key].bases
                       if isinstance(base, str) and "." in base)
    return needed


def sub_state(state, needed):
    """Only the models the new migrations need, so the cost follows the change, not the size of
    the project: Django re-renders every model related to a changed one after each operation.

    Relations of these models to models left out become plain columns (many-to-many ones are
    left out): those tables are neither touched nor locked by the change."""
    from django.db.migrations.state import ProjectState
    from django.db.migrations.utils import resolve_relation

    models = {k: cut_relations(state.models[k], k, needed, resolve_relation) for k in needed}
    return ProjectState(models=models, real_apps=state.real_apps)


def cut_relations(model_state, key, needed, resolve_relation):
    from django.db.models import ForeignKey  # OneToOneField is one too

    fields, cut = [], False
    for name, field in model_state.fields.items():
        remote = getattr(field, "remote_field", None)
        if remote is None or remote_keys(remote, key, resolve_relation) <= needed:
            fields.append((name, field))
            continue
        cut = True
        if isinstance(field, ForeignKey):
            fields.append((name, stand_in(name, field)))
    if not cut:
        return model_state
    return type(model_state)(model_state.app_label, model_state.name, fields,
                             dict(model_state.options), model_state.bases, model_state.managers)


def stand_in(name, field):
    """A foreign key's column without its constraint: the type of the target's key does not matter
    for tables the change does not touch."""
    from django.db import models

    return models.BigIntegerField(null=field.null, db_index=bool(field.db_index), unique=field.unique,
                                  db_column=field.db_column or f"{name}_id")


def remote_keys(remote, key, resolve_relation):
    keys = {resolve_relation(remote.model, *key)}
    through = getattr(remote, "through", None)
    if through:
        keys.add(resolve_relation(through, *key))
    return keys


def database_operations(operations):
    for operation in operations:
        nested = getattr(operation, "database_operations", None)
        if nested is not None:
            yield from database_operations(nested)
        else:
            yield operation


def operation_models(operation, app_label, resolve_relation, by_table, runsql_tables):
    kind = type(operation).__name__
    if kind == "RunPython":
        return set()  # not executed in the sandbox
    if kind == "RunSQL":
        tables = runsql_tables.get("tables")
        return None if runsql_tables.get("unknown") else {by_table[t] for t in tables if t in by_table}
    keys = set()
    model_name = getattr(operation, "model_name", None)
    names = [model_name] if model_name else [getattr(operation, a, None) for a in ("name", "old_name")]
    keys |= {(app_label, n.lower()) for n in names if isinstance(n, str)}
    if not keys and kind not in ("CreateExtension", "TrigramExtension", "HStoreExtension"):
        return None  # an operation we cannot place: build everything
    fields = [f for _, f in getattr(operation, "fields", [])] + [getattr(operation, "field", None)]
    for field in fields:
        if field is not None and getattr(field, "remote_field", None) is not None:
            keys.add(resolve_relation(field.remote_field.model, app_label, model_name or names[0]))
    return keys


def references(model_state, key, resolve_relation):
    out = set()
    for field in model_state.fields.values():
        remote = getattr(field, "remote_field", None)
        if remote is not None:
            out.add(resolve_relation(remote.model, *key))
            through = getattr(remote, "through", None)
            if through:
                out.add(resolve_relation(through, *key))
    for base in model_state.bases:
        if isinstance(base, str) and "." in base:
            out.add(resolve_relation(base, *key))
    return out


# ------------------------------------------------------------------ plan


def target_plan(loader, targets):
    graph = loader.graph
    plan = []
    wanted = set(targets)
    for leaf in sorted(graph.leaf_nodes()):
        for key in graph.forwards_plan(leaf):
            if key in wanted and key not in plan:
                plan.append(key)
    return plan


# ------------------------------------------------------------------ SQL collection


def collect(connection, migration, state):
    """Per-operation SQL through Django's own sqlmigrate path (Migration.apply, collect_sql)."""
    records = [{"index": i, "type": type(op).__name__, "description": describe(op),
                "reduces_to_sql": bool(getattr(op, "reduces_to_sql", True)),
                "atomic": getattr(op, "atomic", None), "statements": [], "deferred": [],
                "error": None, "facts": {}}
               for i, op in enumerate(migration.operations)]
    owner = {}  # id(deferred statement) -> operation index
    for index, operation in enumerate(migration.operations):
        operation.database_forwards = recorder(operation, records[index], owner, connection)
    collected = []
    error = None
    try:
        with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
            state = migration.apply(state, editor, collect_sql=True)
            attribute_deferred(editor, owner, records)
        collected = list(editor.collected_sql)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        for operation in migration.operations:
            operation.__dict__.pop("database_forwards", None)
    return state, records, collected, error


def recorder(operation, record, owner, connection):
    original = type(operation).database_forwards

    def database_forwards(app_label, editor, from_state, to_state):
        start = len(editor.collected_sql)
        before = {id(s) for s in editor.deferred_sql}
        record["facts"] = facts(operation, app_label, from_state, to_state, connection)
        try:
            original(operation, app_label, editor, from_state, to_state)
        except Exception as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            record["statements"] = list(editor.collected_sql[start:])
            for statement in editor.deferred_sql:
                if id(statement) not in before:
                    owner[id(statement)] = record["index"]

    return database_forwards


def attribute_deferred(editor, owner, records):
    """Deferred SQL runs at the end of the migration; credit it to the operation that queued it."""
    pending = list(editor.deferred_sql)
    editor.deferred_sql = []
    for statement in pending:
        editor.execute(statement, None)
        index = owner.get(id(statement))
        target = records[index] if index is not None else records[-1]
        target["deferred"].append(editor.collected_sql[-1])


def describe(operation):
    try:
        return operation.describe()
    except Exception as exc:
        return f"{type(operation).__name__} ({type(exc).__name__} in describe())"


def facts(operation, app_label, from_state, to_state, connection):
    """What Django's state knows that the SQL alone does not (nullability, defaults, tables)."""
    out = {}
    model_name = getattr(operation, "model_name", None) or getattr(operation, "old_name", None) \
        or getattr(operation, "name", None)
    field_name = getattr(operation, "name", None) if getattr(operation, "model_name", None) else None
    for label, state in (("before", from_state), ("after", to_state)):
        model = find_model(state, app_label, model_name)
        if model is None:
            continue
        out.setdefault("table", model._meta.db_table)
        out[f"table_{label}"] = model._meta.db_table
        if field_name:
            out[f"field_{label}"] = field_facts(model, field_name, connection)
    new_name = getattr(operation, "new_name", None)
    if new_name and "table_after" not in out:
        model = find_model(to_state, app_label, new_name)
        if model is not None:
            out["table_after"] = model._meta.db_table
    return out


def find_model(state, app_label, model_name):
    if not isinstance(model_name, str):
        return None
    try:
        return state.apps.get_model(app_label, model_name)
    except Exception:
        return None


def field_facts(model, name, connection):
    from django.db.models import NOT_PROVIDED

    try:
        field = model._meta.get_field(name)
    except Exception:
        return None
    return {"column": getattr(field, "column", None), "null": bool(getattr(field, "null", True)),
            "db_default": getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED,
            "has_default": bool(field.has_default()) if hasattr(field, "has_default") else False,
            "db_type": safe_call(field.db_type, connection) if hasattr(field, "db_type") else None,
            "db_index": bool(getattr(field, "db_index", False)),
            "unique": bool(getattr(field, "unique", False)),
            "relation": bool(field.is_relation), "many_to_many": bool(field.many_to_many),
            "code": field_code(field)}


def field_code(field):
    """The field as migration code (what makemigrations would write), for fixes that restate it:
    a state-only rename must say the whole field with its old db_column."""
    try:
        from django.db.migrations.writer import MigrationWriter

        expression, imports = MigrationWriter.serialize(field)
    except Exception:
        return None
    return {"expression": expression, "imports": sorted(imports)}


def safe_call(fn, *args):
    try:
        return fn(*args)
    except Exception:
        return None


# ------------------------------------------------------------------ tracing


class Tracer:
    """Executes statements and records what PostgreSQL did: locks and rewrites."""

    def __init__(self, connection, preexisting_oids):
        self.connection = connection
        self.preexisting = preexisting_oids

    def relations(self, cursor):
        cursor.execute(RELATIONS_SQL)
        return {oid: (name, kind, node, table) for oid, name, kind, node, table in cursor.fetchall()}

    def trace(self, statements, atomic):
        """Run the statements in rolled-back transactions; return per-statement traces."""
        traces = [{"sql": sql, "locks": [], "rewrites": [], "error": None,
                   "transactional": True, "executed": False} for sql in statements]
        groups = [traces] if atomic else [[t] for t in traces]
        for group in groups:
            if not self.traced_transaction(group, atomic):
                break
        return traces

    def traced_transaction(self, traces, atomic):
        with self.connection.cursor() as cursor:
            before = self.relations(cursor)
            cursor.execute("BEGIN")
            held, previous = set(), before
            try:
                for trace in traces:
                    cursor.execute(trace["sql"])
                    trace["executed"] = True
                    now = self.locks(cursor)
                    names = self.relations(cursor)
                    trace["locks"] = [self.lock(oid, mode, names, before)
                                      for oid, mode in sorted(now - held)
                                      if oid in names or oid in before]
                    held |= now
                    # against the state just before this statement: an earlier rewrite is not this one's
                    trace["rewrites"] = self.rewrites(previous, names)
                    previous = names
            except Exception as exc:
                self.record_error(trace, exc, alone=not atomic)
            finally:
                cursor.execute("ROLLBACK")
        return not any(t["error"] for t in traces)

    def record_error(self, trace, exc, alone):
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        if getattr(cause, "sqlstate", None) == ACTIVE_SQL_TRANSACTION:
            trace["transactional"] = False
            if alone:
                return  # Django runs it on its own, outside a transaction: apply() does the same
        trace["error"] = first_line(exc)

    def apply(self, traces, atomic):
        """Apply traced statements for real so the next migration builds on them."""
        with self.connection.cursor() as cursor:
            if atomic:
                cursor.execute("BEGIN")
            for trace in traces:
                try:
                    cursor.execute(trace["sql"])
                    trace["executed"] = True
                except Exception as exc:
                    trace["error"] = first_line(exc)
                    if atomic:
                        cursor.execute("ROLLBACK")
                    return False
            if atomic:
                cursor.execute("COMMIT")
        return True

    def locks(self, cursor):
        cursor.execute(LOCKS_SQL)
        return {(oid, mode) for oid, mode in cursor.fetchall()}

    def lock(self, oid, mode, names, before):
        name, kind, _node, table = names.get(oid) or before.get(oid) or (str(oid), "?", None, None)
        return {"relation": name, "mode": mode, "kind": RELKINDS.get(kind, "other"),
                "table": table, "new_in_review": oid not in self.preexisting}

    def rewrites(self, before, now):
        return sorted(name for oid, (name, kind, node, _t) in before.items()
                      if kind in ("r", "p", "m") and oid in now and now[oid][2] != node)

    def table_info(self, name):
        with self.connection.cursor() as cursor:
            cursor.execute(COLUMNS_SQL, [name])
            columns = {n: {"name": n, "type": t, "not_null": nn, "has_default": hd}
                       for n, t, nn, hd in cursor.fetchall()}
            cursor.execute(CHECKS_SQL, [name])
            checks = [row[0] for row in cursor.fetchall()]
        return {"name": name, "columns": columns, "valid_checks": checks}


def trace_migration(tracer, migration, records, atomic_ddl, preexisting_names, tables):
    """Execute the migration's statements in the order and transactions Django would use."""
    for unit_atomic, items in transaction_units(migration, records, atomic_ddl):
        traces = tracer.trace([sql for _, _, sql in items], unit_atomic)
        for (record, kind, _sql), trace in zip(items, traces):
            trace["deferred"] = kind == "deferred"
            record.setdefault("traces", []).append(trace)
        for name in touched_tables(records, preexisting_names) - tables.keys():
            tables[name] = tracer.table_info(name)  # still as it was before this unit
        error = next((t["error"] for t in traces if t["error"]), None)
        if error or not tracer.apply(traces, unit_atomic):
            return error or next(t["error"] for t in traces if t["error"])
    return None


def transaction_units(migration, records, atomic_ddl):
    items = [(r, "main", sql) for r in records for sql in executable(r["statements"])]
    items += [(r, "deferred", sql) for r in records for sql in executable(r["deferred"])]
    if migration.atomic and atomic_ddl:
        return [(True, items)] if items else []
    units = []
    for record in records:
        main = [(r, k, s) for r, k, s in items if r is record and k == "main"]
        if record["atomic"] and main:
            units.append((True, main))
        else:
            units.extend((False, [item]) for item in main)
    units.extend((False, [item]) for item in items if item[1] == "deferred")
    return units


def executable(statements):
    """One string from Django may hold several statements ("…; SET CONSTRAINTS …;")."""
    import sqlparse  # a dependency of Django itself

    out = []
    for text in statements:
        out.extend(part for part in sqlparse.split(text) if part.strip() and not is_comment(part))
    return out


def is_comment(text):
    return all(line.lstrip().startswith("--") or not line.strip() for line in text.splitlines())


def touched_tables(records, preexisting_names):
    names = set()
    for record in records:
        for trace in record.get("traces", []):
            for lock in trace["locks"]:
                table = lock["table"] or (lock["relation"] if lock["kind"] == "table" else None)
                if table in preexisting_names and not lock["new_in_review"]:
                    names.add(table)
    return names


def first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ------------------------------------------------------------------ review


def review(request):
    started = time.monotonic()
    setup_django(request)
    connection, loader = load_graph()
    import django

    files = node_files(loader)
    targets, unresolved = [], []
    for path in request["targets"]:
        key = files.get(os.path.realpath(path))
        (targets.append(key) if key else unresolved.append(path))
    try:
        connection.ensure_connection()
        server_version = connection.pg_version
    except Exception as exc:
        raise Fatal("database", exc) from exc
    answer = {"django_version": django.get_version(), "postgres_version": server_version,
              "unresolved": unresolved, "conflicts": conflicts(loader), "migrations": [],
              "migration_files": {f"{k[0]}.{k[1]}": p for p, k in files.items()}}
    state, applied = pre_state(loader, targets)
    answer["timings"] = {"graph": round(time.monotonic() - started, 3)}
    try:
        needed = needed_models(loader, targets, state, request.get("runsql_tables") or {})
    except Exception:  # an odd operation or relation: the full schema is always right
        needed = None
    answer["schema_models"] = None if needed is None else len(needed)
    if needed is not None:
        # The new migrations only touch these: Django re-renders what a change relates to after
        # every operation, so a small state keeps that cost proportional to the change.
        state = sub_state(state, needed)
    try:
        build_schema(connection, loader, state, applied)
    except Exception as exc:
        raise Fatal("pre-state schema", exc) from exc
    answer["timings"]["schema"] = round(time.monotonic() - started, 3)
    with connection.cursor() as cursor:
        tracer = Tracer(connection, set())
        relations = tracer.relations(cursor)
    tracer.preexisting = set(relations)
    preexisting_names = {name for name, kind, _n, _t in relations.values() if kind in ("r", "p")}
    for key in target_plan(loader, targets):
        migration = loader.graph.nodes[key]
        answer["migrations"].append(review_migration(connection, tracer, migration, state,
                                                     preexisting_names, request.get("trace", True)))
        state = answer["migrations"][-1].pop("_state")
    answer["timings"]["total"] = round(time.monotonic() - started, 3)
    return answer


def review_migration(connection, tracer, migration, state, preexisting_names, trace):
    before = state.clone()
    after, records, collected, error = collect(connection, migration, before)
    out = {"app_label": migration.app_label, "name": migration.name,
           "atomic": bool(migration.atomic), "replaces": [list(r) for r in migration.replaces],
           "collected_sql": collected, "error": error, "operations": records,
           "tables_before": {}, "_state": after if error is None else state}
    if error is None and trace:
        out["error"] = trace_migration(tracer, migration, records,
                                       connection.features.can_rollback_ddl,
                                       preexisting_names, out["tables_before"])
    return out


def conflicts(loader):
    try:
        return {app: sorted(names) for app, names in loader.detect_conflicts().items()}
    except Exception:
        return {}


if __name__ == "__main__":
    sys.exit(main(sys.argv))
