"""Runs inside the project's own interpreter, on the project's own code.

Self-contained on purpose: it may run under a Python that has only the
project's dependencies (Django and a PostgreSQL driver), so it imports
nothing of migration-safe. It reads one JSON request (argv[1]: a path, or fd:N for a file the
parent opened), writes one JSON answer (argv[2], likewise) and prints nothing of its own.

Steps: load settings with DATABASES pointed at the throwaway database,
load the migration graph once, build the schema of the state just before
the new migrations from that state (not by replaying history), then for
each new migration collect every operation's SQL through the same path as
`manage.py sqlmigrate` and execute it in a rolled-back transaction while
recording the locks and rewrites it causes, before applying it for the
next migration to build on.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path


def load_protocol():
    """protocol.py (the request's and answer's types) from beside this file, by path: `-I` keeps our
    folder off sys.path, and the project's root goes first on it, where a module of the project
    named `protocol` would stand in for ours."""
    path = Path(__file__).with_name("protocol.py")
    spec = importlib.util.spec_from_file_location("migration_safe_protocol", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


protocol = load_protocol()

# SQLSTATE 25001: "cannot run inside a transaction block" (CONCURRENTLY, VACUUM…)
ACTIVE_SQL_TRANSACTION = "25001"

RELATIONS_SQL = """
SELECT c.oid::bigint, c.relname, c.relkind, c.relfilenode::bigint, ic.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_class ic ON ic.oid = i.indrelid
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg_temp%'
"""

# The locks this session holds, with what each locked relation is now (RELATIONS_SQL's columns).
LOCKED_SQL = f"""
SELECT l.relation::bigint, l.mode, r.name, r.kind, r.node, r.tablename
FROM pg_locks l
LEFT JOIN ({RELATIONS_SQL}) AS r(oid, name, kind, node, tablename) ON r.oid = l.relation
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
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

# Unique indexes named in `%s` (a superset: the review matches the names DROP INDEX parses to)
UNIQUE_INDEXES_SQL = """
SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indisunique AND pg_table_is_visible(c.oid) AND position(lower(c.relname) IN lower(%s)) > 0
"""
DROP_INDEX = re.compile(r"\bDROP\s+INDEX\b", re.IGNORECASE)

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
    with channel(argv[1], "r") as fh:
        request: protocol.ChildRequest = json.load(fh)
    answer: protocol.ChildAnswer
    try:
        answer = review(request)
    except Fatal as fatal:
        answer = {"fatal": {"stage": fatal.stage, "error": str(fatal), "traceback": fatal.tb}}
    except Exception as exc:  # a bug here or a hostile project: still answer
        fatal = Fatal("review", exc)
        answer = {"fatal": {"stage": fatal.stage, "error": str(fatal), "traceback": fatal.tb}}
    with channel(argv[2], "w") as fh:
        json.dump(answer, fh)
    return 0


def channel(spec, mode):
    """`fd:N`: a file the parent opened and passed down (it never reads anything of ours by name)."""
    if spec.startswith("fd:"):
        return os.fdopen(int(spec[3:]), mode, encoding="utf-8")
    return open(spec, mode, encoding="utf-8")


# ------------------------------------------------------------------ setup


def setup_django(request: protocol.ChildRequest):
    root = request["root"]
    os.chdir(root)
    sys.path.insert(0, root)
    # The config's `django.environment` (checked by the parent): settings read it when imported.
    os.environ.update(request.get("environment") or {})
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
    project again (seconds for a few hundred models at our users' scale). Only swappable models can
    answer, and the project's own registry does not change once set up: ask those, in Django's order."""
    from django.apps import apps

    swappable = []

    def get_swappable_settings_name(to_string):
        if not swappable:
            swappable.extend(m for m in apps.get_models(include_swapped=True) if m._meta.swappable) \
                or swappable.append(None)
        to_string = to_string.lower()
        for model in filter(None, swappable):
            swapped = model._meta.swapped
            if (swapped and swapped.lower() == to_string) or model._meta.label_lower == to_string:
                return model._meta.swappable
        return None

    get_swappable_settings_name.cache_clear = swappable.clear  # Apps.clear_cache() calls it
    apps.get_swappable_settings_name = get_swappable_settings_name


def throwaway_database(configured, target: protocol.DatabaseConfig):
    engine = configured.get("ENGINE") or ""
    # Keep PostGIS and other PostgreSQL-family backends: their schema editors differ.
    if "postg" not in engine:
        engine = "django.db.backends.postgresql"
    return {"ENGINE": engine, "NAME": target["name"], "USER": target["user"],
            "PASSWORD": target.get("password", ""), "HOST": target["host"],
            "PORT": str(target.get("port") or ""), "OPTIONS": {}, "TEST": {}}


def load_graph(deployed=None):
    from django.db.migrations.loader import MigrationLoader

    loader_class = deployed_loader(MigrationLoader, deployed) if deployed else MigrationLoader
    try:
        with memoized_roots():
            return loader_class(None, ignore_no_migrations=True)
    except Exception as exc:  # circular or missing dependencies, bad migration modules
        raise Fatal("graph", exc) from exc


def node_files(loader):
    files = {}
    for key, migration in loader.disk_migrations.items():
        module = sys.modules.get(migration.__module__)
        path = getattr(module, "__file__", None)
        if path:
            files[os.path.realpath(path)] = key
    return files


# ------------------------------------------------------------------ loading, cold or from the cache


@dataclasses.dataclass
class Loaded:
    """The migration graph and the state just before the new migrations."""

    loader: object
    targets: list  # (app_label, name) of the new migrations, in the order asked
    unresolved: list  # asked paths that are no migration Django knows
    files: dict  # realpath -> (app_label, name), every migration file on disk
    state: object  # ProjectState with everything but the targets (and what depends on them) applied
    objects: list  # SQL of the database objects the state does not carry (see object_statements)
    excluded: set
    cache: str = "off"
    squashes: list = dataclasses.field(default_factory=list)  # SquashRecord of each new squash
    replaced: list = dataclasses.field(default_factory=list)  # ReplacedRecord of new replaced ones


def load(target_paths, cache, deleted=()):
    """From the cache when an earlier review left the state of exactly these other migration files
    (the import of thousands of migration modules and the state they build is most of a review's
    cost at our users' scale), else from every migration module, like Django."""
    reason = "off"
    scan = cache.scan() if cache else None
    if cache and scan is None:
        reason = "miss: the migration files could not be listed as Django would"
    if scan is not None:
        loaded = warm_load(target_paths, cache, scan)
        if isinstance(loaded, Loaded):
            if "newer" in loaded.cache:  # the next review of these files starts from here
                loaded.cache += f"; {cache.store(loaded, scan)}"
            return loaded
        reason = loaded
    loaded = cold_load(target_paths, deleted)
    if cache:
        loaded.cache = f"{reason}; {cache.store(loaded, scan)}"
    return loaded


def cold_load(target_paths, deleted=()):
    loader = load_graph(Deployed(target_paths, deleted))
    files = node_files(loader)
    targets, unresolved = resolve_targets(target_paths, files)
    targets, squashes, replaced = squash_targets(loader, targets, files, deleted)
    excluded = excluded_by(loader.graph, targets)
    state, plan = pre_state(loader, excluded)
    objects = object_statements(loader.graph.nodes[key] for key in plan)
    return Loaded(loader, targets, unresolved, files, state, objects, excluded,
                  squashes=squashes, replaced=replaced)


def warm_load(target_paths, cache, scan):
    """A Loaded from the cache, or why not. An entry made before the main branch gained migrations
    serves too: those are imported and applied to its state (they come after everything in it)."""
    files = {path: key for key, path in scan.paths.items()}
    targets, unresolved = resolve_targets(target_paths, files)
    others = {k: d for k, d in scan.digests.items() if k not in set(targets)}
    entry = cache.find(scan.settings, others)
    if isinstance(entry, str):
        return entry
    payload = entry.load()
    if isinstance(payload, str):
        return payload
    newer = [k for k in others if k not in payload["nodes"]]
    disk = {key: placeholder(key, *payload["nodes"][key]) for key in others if key in payload["nodes"]}
    for key in [*targets, *newer]:
        migration = import_migration(scan.modules[key[0]], key)
        if migration is None:
            return "miss: a migration does not import (Django says why)"
        disk[key] = migration
    if involves_squashes(disk, targets):
        return "miss: the change adds squashed migrations or migrations one replaces"
    try:
        loader = loader_over(disk, scan)
    except Exception:
        return "miss: the graph does not build (Django says why)"
    excluded = excluded_by(loader.graph, targets)
    if excluded != set(targets):
        return "miss: other migrations depend on the new ones"
    caught_up = catch_up(loader.graph, payload["state"], newer, excluded)
    if isinstance(caught_up, str):
        return caught_up
    state, plan = caught_up
    objects = [*payload["objects"], *object_statements(loader.graph.nodes[key] for key in plan)]
    return Loaded(loader, targets, unresolved, files, state, objects, excluded,
                  f"hit {entry.folder.name}" + (f" (+{len(newer)} newer migrations)" if newer else ""))


def catch_up(graph, state, newer, excluded):
    """The cached state with the migrations added since, when nothing cached depends on them, and
    the order they were applied in."""
    if not newer:
        return state, []
    if any(graph.nodes[key].replaces for key in newer if key in graph.nodes):
        return "miss: a newer squashed migration"
    later = excluded_by(graph, [k for k in newer if k in graph.nodes])
    if later - set(newer) - excluded:
        return "miss: cached migrations depend on newer ones"
    plan = target_plan(graph, [k for k in newer if k in graph.nodes], later)
    for key in plan:
        state = advance(state, graph.nodes[key])
    return state, plan


def resolve_targets(target_paths, files):
    targets, unresolved = [], []
    for path in target_paths:
        key = files.get(os.path.realpath(path))
        (targets.append(key) if key else unresolved.append(path))
    return targets, unresolved


def placeholder(key, dependencies, replaces, run_before):
    """A migration as the graph sees it: its name and edges, no operations (its state is cached)."""
    from django.db.migrations import Migration

    migration = Migration(key[1], key[0])
    migration.dependencies, migration.replaces, migration.run_before = (
        list(dependencies), list(replaces), list(run_before))
    return migration


def import_migration(module_name, key):
    import importlib

    try:
        return importlib.import_module(f"{module_name}.{key[1]}").Migration(key[1], key[0])
    except Exception:
        return None


def loader_over(disk, scan):
    """Django's own MigrationLoader (dependencies, squashes, `__first__`, consistency) over migrations
    we provide instead of importing every module."""
    from django.db.migrations.loader import MigrationLoader

    class CachedLoader(MigrationLoader):
        def load_disk(self):
            self.disk_migrations = dict(disk)
            self.migrated_apps, self.unmigrated_apps = set(scan.migrated), set(scan.unmigrated)

    with memoized_roots():
        return CachedLoader(None, ignore_no_migrations=True)


def excluded_by(graph, targets):
    excluded = set()
    for target in targets:
        excluded.update(graph.backwards_plan(target))  # target and all that depend on it
    return excluded


@contextlib.contextmanager
def memoized_roots():
    """MigrationGraph.root_nodes scans every node, and the loader asks for it on each `__first__`
    dependency: thousands of times at our users' scale. The answer only changes when a node or an
    edge inside an app is added or removed."""
    from django.db.migrations import loader as loader_module

    graph_class = loader_module.MigrationGraph

    class MemoGraph(graph_class):
        def root_nodes(self, app=None):
            memo = self.__dict__.setdefault("_roots", {})
            if app not in memo:
                memo[app] = super().root_nodes(app)
            return list(memo[app])

        def forget(self):
            self.__dict__.pop("_roots", None)

        def add_node(self, key, migration):
            self.forget()
            super().add_node(key, migration)

        def add_dummy_node(self, key, origin, error_message):
            self.forget()
            super().add_dummy_node(key, origin, error_message)

        def add_dependency(self, migration, child, parent, skip_validation=False):
            if child[0] == parent[0]:
                self.forget()
            super().add_dependency(migration, child, parent, skip_validation)

        def remove_replaced_nodes(self, replacement, replaced):
            self.forget()
            super().remove_replaced_nodes(replacement, replaced)

        def remove_replacement_node(self, replacement, replaced):
            self.forget()
            super().remove_replacement_node(replacement, replaced)

    loader_module.MigrationGraph = MemoGraph
    try:
        yield
    finally:
        loader_module.MigrationGraph = graph_class


# ------------------------------------------------------------------ squashed migrations


@dataclasses.dataclass
class Deployed:
    """What a database where the base branch is deployed has applied: every migration file that is
    not new, those the change deletes, and all that an older squash replaces (Django recorded them,
    or the squash itself when it ran instead)."""

    target_paths: list
    deleted: list  # DeletedMigration: what a new squash replaces that the change deletes

    def applied(self, loader):
        new = set(resolve_targets(self.target_paths, node_files(loader))[0])
        applied = {key: None for key in loader.disk_migrations if key not in new}
        applied.update(((m["app_label"], m["name"]), None) for m in self.deleted)
        for key, migration in loader.disk_migrations.items():
            if migration.replaces and key not in new:
                applied.update((tuple(replaced), None) for replaced in migration.replaces)
        return applied


def deployed_loader(loader_class, deployed):
    """Django's loader resolving squashes as it does on a database where the base is deployed: a new
    squash whose replaced migrations are all applied there is recorded as applied and runs nothing;
    one with only some of them applied is left out and the rest of them run instead. Without a
    connection, build_graph takes nothing as applied: it is given what the base applied."""

    class DeployedLoader(loader_class):
        @property
        def applied_migrations(self):
            return self.__dict__["deployed_applied"]

        @applied_migrations.setter
        def applied_migrations(self, value):  # None from __init__, then {} from build_graph
            self.__dict__["deployed_applied"] = value if value is None else {**deployed.applied(self), **value}

    return DeployedLoader


def involves_squashes(disk, targets):
    """A new squash, or a new migration that one replaces: only a cold load resolves them."""
    replaced = {tuple(key) for migration in disk.values() for key in migration.replaces}
    return any(disk[key].replaces or key in replaced for key in targets)


def squash_targets(loader, targets, files, deleted):
    """The targets that run where the base is deployed, and records of the new squashes (all of
    them) and of the new migrations a squash replaces (they do not run: the squash does)."""
    paths = {key: path for path, key in files.items()}
    running, squashes, replaced = [], [], []
    for key in targets:
        migration = loader.disk_migrations[key]
        if migration.replaces:
            squashes.append(squash_record(loader, key, paths[key], deleted))
        if key in loader.graph.nodes and not (migration.replaces and key in loader.applied_migrations):
            running.append(key)
        elif not migration.replaces:
            by = next((f"{k[0]}.{k[1]}" for k, m in loader.replacements.items()
                       if key in map(tuple, m.replaces)), None)
            replaced.append({"app_label": key[0], "name": key[1], "path": paths[key], "replaced_by": by})
    return running, squashes, replaced


def squash_record(loader, key, path, deleted):
    migration = loader.disk_migrations[key]
    replaces = [tuple(r) for r in migration.replaces]
    chain = replaced_migrations(loader, migration, deleted)
    differences, uncompared = compare_squash(loader, key, chain)
    return {"app_label": key[0], "name": key[1], "path": path, "replaces": [list(r) for r in replaces],
            "applied": key in loader.applied_migrations,
            "runs": key in loader.graph.nodes and key not in loader.applied_migrations,
            "in_base": [list(r) for r in replaces if r in loader.applied_migrations],
            "differences": differences, "uncompared": uncompared,
            "dropped": dropped_operations(chain, migration)}


def replaced_migrations(loader, squash, deleted):
    """The migrations a squash replaces, in its order: from the tree, else (the change deletes them)
    from their text in the base; None for one that is neither."""
    sources = {(m["app_label"], m["name"]): m["source"] for m in deleted}
    return {key: loader.disk_migrations.get(key) or from_source(key, sources.get(key))
            for key in map(tuple, squash.replaces)}


def from_source(key, source):
    """A deleted migration from its text in the base, as Django would have imported it."""
    import types

    from django.db.migrations.loader import MigrationLoader

    if not source:
        return None
    package = MigrationLoader.migrations_module(key[0])[0]
    module = types.ModuleType(f"{package}.{key[1]}")
    module.__package__ = package
    try:
        exec(compile(source, f"{key[0]}/migrations/{key[1]}.py (base)", "exec"), module.__dict__)
        return module.Migration(key[1], key[0])
    except Exception:  # reported as missing: the comparison is never taken as equal
        return None


def compare_squash(loader, key, chain):
    """What Django's autodetector finds from the state the replaced migrations (`chain`) leave to the
    state the squash leaves, both from the state before them; or why they could not be compared."""
    from django.db.migrations.autodetector import MigrationAutodetector

    squash = loader.disk_migrations[key]
    replaces = list(chain)
    missing = [f"{r[0]}.{r[1]}" for r, migration in chain.items() if migration is None]
    if missing:
        return [], f"{', '.join(missing)} neither in the tree nor readable from the base"
    try:
        before = make_state(loader.graph, plan_before(loader.graph, key, replaces), loader.unmigrated_apps)
        squashed = advance(before.clone(), squash)
        state = before
        for migration in chain.values():
            state = advance(state, migration)
        changes = MigrationAutodetector(normalized(state), normalized(squashed)).changes(graph=loader.graph)
    except Exception as exc:  # a state that does not build or render: said, never taken as equal
        return [], f"{type(exc).__name__}: {first_line(exc)}"
    return [f"{app}: {describe(operation)}" for app, migrations in sorted(changes.items())
            for migration in migrations for operation in migration.operations], None


def normalized(state):
    """Its `*_together` options as a model's Options holds them: the autodetector sets them, and
    makemigrations only ever gives it states from models; a migration may write lists of lists."""
    from django.db.models.options import normalize_together

    for model_state in state.models.values():
        for name in ("unique_together", "index_together"):
            if model_state.options.get(name):
                model_state.options[name] = set(normalize_together(model_state.options[name]))
    return state


def plan_before(graph, key, replaces):
    """Every migration the squash (or, where it is left out, its replaced ones) comes after."""
    tips = [key] if key in graph.nodes else [r for r in replaces if r in graph.nodes]
    seen, plan = {key, *replaces}, []
    for tip in tips:
        for node in graph.forwards_plan(tip):
            if node not in seen:
                seen.add(node)
                plan.append(node)
    return plan


def dropped_operations(chain, squash):
    """The RunPython and RunSQL of the replaced migrations (`chain`) that the squash does not keep:
    databases that run the squash never run them. squashmigrations drops the elidable ones; a squash
    edited by hand may drop others."""
    kept = {signature(operation) for operation in squash.operations}
    out = []
    for replaced, migration in chain.items():
        for operation in migration.operations if migration else []:
            mark = signature(operation)
            if mark and mark not in kept:
                elidable = "" if getattr(operation, "elidable", False) else " (not elidable)"
                out.append(f"{replaced[0]}.{replaced[1]}: {mark}{elidable}")
    return out


def signature(operation):
    from django.db.migrations.operations import RunPython, RunSQL

    if isinstance(operation, RunPython):
        return f"RunPython {getattr(operation.code, '__qualname__', repr(operation.code))}"
    if isinstance(operation, RunSQL):
        sql = operation.sql if isinstance(operation.sql, str) else "; ".join(map(str, operation.sql))
        return f"RunSQL {one_line(sql)[:120]}"
    return None


# ------------------------------------------------------------------ the state cache


@dataclasses.dataclass
class Scan:
    """The migration files Django would load (as MigrationLoader.load_disk finds them, without
    importing them) and what else decides the state they build."""

    settings: str
    modules: dict  # app_label -> migrations module
    migrated: set
    unmigrated: set
    paths: dict  # (app_label, name) -> realpath
    digests: dict  # (app_label, name) -> digest of the file


class StateCache:
    """Entries the parent offers (read-only copies) and a folder for the one this review leaves.

    An entry is the pre-state of one set of migration files, the graph's edges and the SQL of the
    database objects the state does not carry,
    pickled, with a header naming its inputs: every other migration file (digest), the settings
    that choose and resolve them, and every module whose code the pickle refers to (digest)."""

    def __init__(self, config: protocol.StateCacheConfig):
        self.entries = [Path(p) for p in config.get("entries", [])]
        self.out = Path(config["out"]) if config.get("out") else None

    def scan(self):
        try:
            return scan_migrations()
        except Exception:  # anything odd: the cold path decides, and reports
            return None

    def find(self, settings_digest, files):
        wanted = {f"{k[0]}.{k[1]}": d for k, d in files.items()}
        best = None
        for folder in self.entries:
            try:
                header = json.loads((folder / "header.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if header.get("format") != CACHE_FORMAT or header.get("settings") != settings_digest:
                continue
            cached = header.get("files") or {}
            if cached == wanted:
                return CacheEntry(folder, header)
            # an older state of the same files, which only lacks migrations added since
            if cached.items() <= wanted.items() and (best is None or len(cached) > len(best.header["files"])):
                best = CacheEntry(folder, header)
        if best is not None:
            return best
        return "miss: no cached state for these migration files" if self.entries else "miss: cache empty"

    def store(self, loaded, scan):
        if self.out is None or scan is None:
            return "not stored"
        if loaded.excluded != set(loaded.targets):
            return "not stored: other migrations depend on the new ones"
        if loaded.squashes or loaded.replaced:
            return "not stored: the change adds squashed migrations or migrations one replaces"
        others = {k: d for k, d in scan.digests.items() if k not in loaded.excluded}
        if others.keys() != loaded.loader.disk_migrations.keys() - loaded.excluded:
            return "not stored: the files Django loaded are not the ones found on disk"
        nodes = {k: (tuple(map(tuple, m.dependencies)), tuple(map(tuple, m.replaces)), tuple(map(tuple, m.run_before)))
                 for k, m in loaded.loader.disk_migrations.items() if k in others}
        try:
            modules = set()
            data = dumps({"state": loaded.state, "nodes": nodes, "objects": loaded.objects}, modules)
            header = {"format": CACHE_FORMAT, "settings": scan.settings,
                      "files": {f"{k[0]}.{k[1]}": d for k, d in others.items()},
                      "modules": {name: module_digest(name) for name in sorted(modules)}}
        except Exception as exc:  # a value that does not pickle: stay cold, and say which
            return f"not stored: {type(exc).__name__}: {first_line(exc)}"
        if not fits_in_a_file(len(data)):  # the sandbox kills a process that writes past its limit
            return "not stored: larger than the sandbox's file size limit"
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "state.pickle").write_bytes(data)
        (self.out / "header.json").write_text(json.dumps(header), encoding="utf-8")
        return "stored"


class CacheEntry:
    def __init__(self, folder, header):
        self.folder, self.header = folder, header

    def load(self):
        import pickle

        for name, digest in self.header.get("modules", {}).items():
            if module_digest(name) != digest:
                return f"miss: the code of {name} changed"
        try:
            return pickle.loads((self.folder / "state.pickle").read_bytes())
        except Exception as exc:
            return f"miss: the cached state does not load ({type(exc).__name__})"


CACHE_FORMAT = 2


def fits_in_a_file(size):
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    return soft == resource.RLIM_INFINITY or size < soft


def dumps(payload, modules):
    """Pickle, noting every module whose classes or functions the pickle names."""
    import io
    import pickle
    import types

    class Recording(pickle.Pickler):
        def reducer_override(self, obj):
            named = isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType))
            module = getattr(obj, "__module__", None) if named else type(obj).__module__
            if isinstance(module, str):
                modules.add(module)
            if isinstance(obj, types.FunctionType) and "<locals>" in obj.__qualname__:
                return rebuilt(obj)
            return NotImplemented

    buffer = io.BytesIO()
    Recording(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(payload)
    return buffer.getvalue()


def rebuilt(function):
    """A local function that says how to make it again, as migrations serialize it (models.SET(…)
    returns one), pickled as that call; any other local function cannot be pickled: say which."""
    import functools
    import pickle

    from django.utils.module_loading import import_string

    deconstruct = getattr(function, "deconstruct", None)
    if deconstruct is None:
        raise pickle.PicklingError(f"cannot pickle the local function {function.__qualname__} "
                                   f"(from {function.__module__})")
    path, args, kwargs = deconstruct()
    return functools.partial(import_string(path), *args, **kwargs), ()


def module_digest(name):
    import importlib

    try:
        module = importlib.import_module(name)
    except Exception:
        return "unimportable"
    path = getattr(module, "__file__", None)
    return file_digest(path) if path else "built in"


def file_digest(path):
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.blake2b(fh.read(), digest_size=16).hexdigest()


def scan_migrations():
    """MigrationLoader.load_disk's view of the migration files, without importing any migration."""
    import importlib
    import pkgutil

    from django.apps import apps
    from django.db.migrations.loader import MigrationLoader

    scan = Scan(settings_digest(), {}, set(), set(), {}, {})
    for app_config in apps.get_app_configs():
        label = app_config.label
        module_name, _explicit = MigrationLoader.migrations_module(label)
        module = None
        if module_name is not None:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError:
                module = None
        path = getattr(module, "__path__", None)
        if module is None or path is None or (getattr(module, "__file__", None) is None
                                              and not isinstance(path, list)):
            scan.unmigrated.add(label)
            continue
        scan.migrated.add(label)
        scan.modules[label] = module_name
        links = {}
        for finder, name, is_pkg in pkgutil.iter_modules(path):
            if is_pkg or name[0] in "_~":
                continue
            if finder.path not in links:  # resolve the folder once, and only the files that are links
                links[finder.path] = (os.path.realpath(finder.path),
                                      {e.name for e in os.scandir(finder.path) if e.is_symlink()})
            folder, linked = links[finder.path]
            file = os.path.join(folder, name + ".py")
            if name + ".py" in linked:
                file = os.path.realpath(os.path.join(finder.path, name + ".py"))
            scan.paths[(label, name)] = file
            scan.digests[(label, name)] = file_digest(file)  # no source (.pyc only): raises, no cache
    return scan


def settings_digest():
    """What, besides the files, decides which migrations load and what their state resolves to."""
    import hashlib

    import django
    from django.apps import apps
    from django.conf import settings
    from django.db import connection

    swappable = {name: str(getattr(settings, name)) for name in dir(settings)
                 if name.isupper() and name.endswith("_MODEL")}
    facts = [django.get_version(), sys.version, [(a.label, a.name) for a in apps.get_app_configs()],
             sorted((k, str(v)) for k, v in getattr(settings, "MIGRATION_MODULES", {}).items()),
             swappable, connection.vendor, type(connection).__module__]
    return hashlib.blake2b(json.dumps(facts).encode(), digest_size=16).hexdigest()


# ------------------------------------------------------------------ pre-state


def pre_state(loader, excluded):
    """State with every migration applied but the excluded ones (the targets and what depends on
    them), and the applied ones in the order `migrate` applies them."""
    plan = applied_plan(loader.graph, excluded)
    return make_state(loader.graph, plan, loader.unmigrated_apps), plan


def applied_plan(graph, excluded):
    """Every migration but the excluded ones, in the order `migrate` applies them. Deduplicated
    with a set: Django's make_state searches a list, quadratic at thousands of migrations."""
    remaining = set(graph.nodes) - excluded
    leaves = [n for n in remaining
              if not any(child.key in remaining for child in graph.node_map[n].children)]
    plan, seen = [], set()
    for leaf in sorted(leaves):
        for key in graph.forwards_plan(leaf):
            if key not in seen:
                seen.add(key)
                plan.append(key)
    return plan


def make_state(graph, plan, real_apps):
    """MigrationGraph.make_state(leaves, at_end=True), without the scan of every model that
    AlterField makes to ask whether other models reference the field (see `unrendered_shortcut`)."""
    from django.db.migrations.state import ProjectState

    project_state = ProjectState(real_apps=real_apps)
    with unrendered_shortcut():
        for key in plan:
            project_state = graph.nodes[key].mutate_state(project_state, preserve=False)
    return project_state


def advance(state, migration):
    """The whole (unrendered) state after a migration, for the next one to pick its models from."""
    with unrendered_shortcut():
        return migration.mutate_state(state, preserve=False)


@contextlib.contextmanager
def unrendered_shortcut():
    """Whether other models reference a field only decides how to re-render models, and a state
    that is not rendered yet (no `apps`) re-renders nothing: skip a scan of every model."""
    from django.db.migrations import state as state_module

    original = state_module.field_is_referenced

    def check(state, model_tuple, field_tuple):
        if "apps" not in state.__dict__:
            return False
        return original(state, model_tuple, field_tuple)

    state_module.field_is_referenced = check
    try:
        yield
    finally:
        state_module.field_is_referenced = original


def build_pre_state(connection, objects, state):
    """The database just before the new migrations: the tables of `state`, created directly from
    its models (like syncdb), and the objects of older migrations that the state does not carry.
    Returns what of these could not be made, and why."""
    statements = schema_statements(connection, state)  # raises before touching the database
    pending = run_each(connection, objects)  # types, collations, extensions: before the tables
    notes = stand_in_collations(connection, pending)
    # In batches: one transaction for thousands of tables would exceed max_locks_per_transaction.
    with connection.cursor() as cursor:
        for start in range(0, len(statements), SCHEMA_BATCH):
            cursor.execute("\n".join(statements[start:start + SCHEMA_BATCH]))
    while pending:  # views, triggers, indexes: on the tables, and on each other in any order
        still = run_each(connection, [sql for sql, _error in pending])
        if len(still) == len(pending):
            break
        pending = still
    return notes + [f"{first_line(error)} ({one_line(sql)[:80]})" for sql, error in pending
                    if not already_there(sql, error)]


COLLATION = re.compile(r'CREATE\s+COLLATION\s+(IF\s+NOT\s+EXISTS\s+)?("(?:[^"]|"")+"|[\w.]+)', re.IGNORECASE)


def stand_in_collations(connection, pending):
    """A collation the server cannot make (an ICU one on a build without ICU) becomes one of the
    same name with the "C" locale: the SQL and locks of what uses it are the same; its sort order
    is not checked. Says which."""
    notes = []
    for item in list(pending):
        sql, error = item
        match = COLLATION.match(uncommented(sql))
        if match is None or getattr(error.__cause__ or error, "sqlstate", None) != "0A000":
            continue
        if not run_each(connection, [f'CREATE COLLATION {match.group(2)} FROM "C"']):
            pending.remove(item)
            notes.append(f"collation {match.group(2)}: {first_line(error)}; a stand-in of the same name "
                         f"was used (its sort order is not checked)")
    return notes


def schema_statements(connection, state):
    from django.db import router

    apps = state.apps
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        for model in apps.get_models(include_auto_created=False):
            meta = model._meta
            # the tables `migrate --database` makes on this alias: the routers decide
            if meta.managed and not meta.proxy and not meta.swapped \
                    and router.allow_migrate_model(connection.alias, model):
                editor.create_model(model)
    return list(editor.collected_sql)


def run_each(connection, statements):
    """Each statement on its own (autocommit); the ones that failed, with their error."""
    failed = []
    for sql in statements:
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
        except Exception as exc:
            failed.append((sql, exc))
    return failed


# SQLSTATEs for "already exists" and "does not exist": a CREATE of what the state already built,
# or a DROP or ALTER (a rename) of what the state names its own way, leaves nothing to rebuild.
DUPLICATE = {"42710", "42P07", "42723", "42P06", "42P04"}
UNDEFINED = {"42704", "42P01", "42883", "3F000"}


def already_there(sql, error):
    cause = error.__cause__ if error.__cause__ is not None else error
    state = getattr(cause, "sqlstate", None)
    verb = uncommented(sql).split(None, 1)[0].upper() if uncommented(sql) else ""
    return (verb == "CREATE" and state in DUPLICATE) or (verb in ("DROP", "ALTER") and state in UNDEFINED)


# What an older RunSQL makes that the model state does not carry: functions, types, views,
# triggers, collations, extensions… (tables and their columns are the state's; data is not needed).
OBJECT_KINDS = (r"FUNCTION|PROCEDURE|AGGREGATE|TYPE|DOMAIN|VIEW|TRIGGER|EXTENSION|COLLATION|SCHEMA"
                r"|SEQUENCE|OPERATOR|CAST|LANGUAGE|RULE|INDEX|TEXT\s+SEARCH|CONVERSION|STATISTICS")
OBJECT_SQL = re.compile(
    rf"(CREATE(\s+OR\s+REPLACE)?(\s+(TRUSTED|PROCEDURAL|UNIQUE|RECURSIVE|CONSTRAINT|EVENT|MATERIALIZED))*"
    rf"|DROP(\s+(MATERIALIZED|EVENT))?|ALTER(\s+(MATERIALIZED|EVENT))?)\s+({OBJECT_KINDS})\b",
    re.IGNORECASE)
LEADING_COMMENTS = re.compile(r"\A(\s+|--[^\n]*(\n|\Z)|/\*.*?\*/)*", re.DOTALL)


def uncommented(sql):
    return LEADING_COMMENTS.sub("", sql, count=1)


def one_line(text):
    return " ".join(text.split())


def object_statements(migrations, alias="default"):
    """The SQL of the database-level operations of `migrations` (applied, in order) whose objects
    the model state does not carry: collations, extensions, and what RunSQL creates besides
    tables. Replaying these is cheap next to replaying every migration."""
    from django.db import connections

    connection = connections[alias]  # the routers let each alias have its own
    out = []
    for migration in migrations:
        for operation in database_operations(migration.operations):
            runsql = type(operation).__name__ == "RunSQL"
            if not (runsql or carries_objects(operation)):
                continue
            collected = collected_sql(connection, operation, migration.app_label)
            out.extend(sql for sql in executable(collected)
                       if not runsql or OBJECT_SQL.match(uncommented(sql)))
    return out


def carries_objects(operation):
    """Operations of django.contrib.postgres that make database objects outside any model."""
    names = {cls.__name__ for cls in type(operation).__mro__}
    return bool(names & {"CreateExtension", "CreateCollation", "RemoveCollation"})


def collected_sql(connection, operation, app_label):
    try:
        with connection.schema_editor(collect_sql=True, atomic=False) as editor:
            operation.database_forwards(app_label, editor, None, None)
    except Exception:  # an operation that needs its states: its objects are not rebuilt
        return []
    return editor.collected_sql


def reset_schema(connection):
    """Drop everything a pre-state attempt made, so that another can start from an empty database."""
    with connection.cursor() as cursor:
        cursor.execute(RESET_SQL)


RESET_SQL = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' LOOP
    EXECUTE format('DROP EXTENSION IF EXISTS %I CASCADE', r.extname);
  END LOOP;
  FOR r IN SELECT nspname FROM pg_namespace WHERE nspowner = current_user::regrole
           AND nspname <> 'public' AND nspname NOT LIKE 'pg\_%' LOOP
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', r.nspname);
  END LOOP;
  FOR r IN SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace
           AND relkind IN ('r', 'p', 'v', 'm', 'f') LOOP
    EXECUTE format('DROP %s IF EXISTS public.%I CASCADE', CASE r.relkind WHEN 'v' THEN 'VIEW'
      WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, r.relname);
  END LOOP;
  -- after the tables: the sequences of their identity columns went with them
  FOR r IN SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'S' LOOP
    EXECUTE format('DROP SEQUENCE IF EXISTS public.%I CASCADE', r.relname);
  END LOOP;
  FOR r IN SELECT oid::regprocedure AS fn, prokind FROM pg_proc
           WHERE pronamespace = 'public'::regnamespace LOOP
    EXECUTE format('DROP %s IF EXISTS %s CASCADE', CASE r.prokind WHEN 'p' THEN 'PROCEDURE'
      WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, r.fn);
  END LOOP;
  FOR r IN SELECT t.oid::regtype AS ty FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid
           WHERE t.typnamespace = 'public'::regnamespace AND t.typelem = 0
             AND (t.typtype IN ('e', 'd', 'r') OR c.relkind = 'c') LOOP
    EXECUTE format('DROP TYPE IF EXISTS %s CASCADE', r.ty);
  END LOOP;
  FOR r IN SELECT collname FROM pg_collation WHERE collnamespace = 'public'::regnamespace LOOP
    EXECUTE format('DROP COLLATION IF EXISTS public.%I CASCADE', r.collname);
  END LOOP;
END $$;
"""


def replay_migrations(connection, graph, plan, real_apps):
    """The pre-state the way `migrate` leaves it: every applied migration's operations in order
    (RunPython aside: no data is needed). Slow next to building from the state, and always right."""
    from django.db import router
    from django.db.migrations.operations import RunPython
    from django.db.migrations.state import ProjectState

    state = ProjectState(real_apps=real_apps)
    forwards = RunPython.database_forwards
    RunPython.database_forwards = lambda *args, **kwargs: None
    try:
        for key in plan:
            migration = graph.nodes[key]
            with connection.schema_editor(atomic=migration.atomic) as editor:
                state = migration.apply(state, editor)
        with connection.schema_editor() as editor:  # apps without migrations, as migrate --run-syncdb
            for model in state.apps.get_models(include_auto_created=False):
                meta = model._meta
                if meta.app_label in real_apps and meta.managed and not meta.proxy and not meta.swapped \
                        and router.allow_migrate_model(connection.alias, model):
                    editor.create_model(model)
    finally:
        RunPython.database_forwards = forwards


# ------------------------------------------------------------------ which tables the change needs


def needed_models(migrations, state, relations, runsql_tables):
    """Models the new migrations need (all of them, for the pre-state schema), or None when that
    cannot be known."""
    operations = [op for migration in migrations for op in database_operations(migration.operations)]
    if sum(type(op).__name__ == "RunSQL" for op in operations) != runsql_tables.get("count", 0):
        return None  # RunSQL the parent did not read (operations built in code): tables unknown
    needed = set()
    for migration in migrations:
        keys = models_needed(migration, state, relations, runsql_tables)
        if keys is None:
            return None
        needed |= keys
    return needed


def models_needed(migration, state, relations, runsql_tables):
    """Models one migration needs in `state`: those it touches, the ones these reference and the
    ones referencing them (their foreign keys take locks and follow renames), and the concrete
    parents of all of these; None when an operation cannot be placed."""
    from django.db.migrations.utils import resolve_relation

    touched, shared = set(), set()
    for operation in database_operations(migration.operations):
        keys = operation_models(operation, migration.app_label, resolve_relation, relations.by_table,
                                runsql_tables)
        if keys is None:
            return None
        touched |= keys
        if type(operation).__name__ not in LOCAL_OPERATIONS:
            shared |= keys
    needed = set(touched)
    for key in touched:
        needed |= relations.forward.get(key, set())
    for key in shared:
        needed |= relations.backward.get(key, set())
    return with_parents(state, needed & state.models.keys(), resolve_relation)


class Relations:
    """Which models reference which, kept up to date as the new migrations change the state: a scan
    of thousands of models for every new migration would cost more than the migration itself."""

    def __init__(self, state):
        from django.db.migrations.utils import resolve_relation

        self.resolve = resolve_relation
        self.forward, self.backward, self.by_table, self.table_of = {}, {}, {}, {}
        for key in state.models:
            self.refresh(state, key)

    def refresh(self, state, key):
        for old in self.forward.pop(key, ()):
            self.backward[old].discard(key)
        table = self.table_of.pop(key, None)
        if table is not None and self.by_table.get(table) == key:
            del self.by_table[table]
        model_state = state.models.get(key)
        if model_state is None:
            return
        self.forward[key] = references(model_state, key, self.resolve)
        for other in self.forward[key]:
            self.backward.setdefault(other, set()).add(key)
        self.table_of[key] = model_state.options.get("db_table") or f"{key[0]}_{key[1]}"
        self.by_table[self.table_of[key]] = key

    def after(self, state, migration, runsql_tables):
        """Refresh what a migration may have changed: the models it touched, those referencing them
        (renames rewrite their foreign keys), and models it created or deleted."""
        from django.db.migrations.utils import resolve_relation

        stale = set(state.models.keys() ^ self.forward.keys())
        for operation in database_operations(migration.operations):
            keys = operation_models(operation, migration.app_label, resolve_relation, self.by_table,
                                    runsql_tables) or set()
            new_name = getattr(operation, "new_name", None)
            if isinstance(new_name, str) and type(operation).__name__ == "RenameModel":
                keys.add((migration.app_label, new_name.lower()))
            stale |= keys
        for key in list(stale):
            stale |= self.backward.get(key, set())
        for key in stale:
            self.refresh(state, key)


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
    for tables the change does not touch. Indexes and constraints may name it either way
    (`project` or `project_id`), as they may a foreign key."""
    from django.db import models

    class StandIn(models.BigIntegerField):
        def get_attname(self):
            return f"{self.name}_id"

    return StandIn(null=field.null, db_index=bool(field.db_index), unique=field.unique,
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


def target_plan(graph, targets, excluded):
    """The targets in the order `migrate` applies them. Only leaves that descend from a target
    (the excluded ones) have one in their plan: walking the others costs seconds at scale."""
    plan, wanted = [], set(targets)
    for leaf in sorted(set(graph.leaf_nodes()) & excluded):
        for key in graph.forwards_plan(leaf):
            if key in wanted and key not in plan:
                plan.append(key)
    return plan


# ------------------------------------------------------------------ SQL collection


def collect(connection, migration,
            state) -> tuple[object, list[protocol.OperationRecord], list[str], str | None]:
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
        state.apps  # noqa: B018 -- rendered once here: apply() clones it for every operation
        with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
            state = migration.apply(state, editor, collect_sql=True)
            attribute_deferred(editor, owner, records)
        collected = list(editor.collected_sql)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        for operation in migration.operations:
            operation.__dict__.pop("database_forwards", None)
    for operation, record in zip(migration.operations, records):  # collect_sql skips RunPython
        note_allowed(record, operation, migration.app_label, connection.alias, None, None)
    return state, records, collected, error


def recorder(operation, record: protocol.OperationRecord, owner, connection):
    original = type(operation).database_forwards

    def database_forwards(app_label, editor, from_state, to_state):
        start = len(editor.collected_sql)
        before = {id(s) for s in editor.deferred_sql}
        record["facts"] = facts(operation, app_label, from_state, to_state, connection)
        note_allowed(record, operation, app_label, editor.connection.alias, from_state, to_state)
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


def note_allowed(record, operation, app_label, alias, from_state, to_state):
    """Where DATABASE_ROUTERS decide, whether they let the operation run on `alias` (asked once)."""
    from django.db import router

    if router.routers and "allowed" not in record:
        record["allowed"] = allowed_on(operation, app_label, alias, from_state, to_state)


def allowed_on(operation, app_label, alias, from_state, to_state):
    """Whether the routers let the operation run on `alias`, asked as its database_forwards asks
    them: with its hints (RunSQL, RunPython), else its model, else its app alone."""
    from django.db import router

    try:
        hints = getattr(operation, "hints", None)
        if isinstance(hints, dict):
            return bool(router.allow_migrate(alias, app_label, **hints))
        nested = getattr(operation, "database_operations", None)
        if nested is not None:
            return any(allowed_on(op, app_label, alias, from_state, to_state) for op in nested)
        for name in (getattr(operation, a, None) for a in ("model_name", "name", "new_name", "old_name")):
            model = find_model(to_state, app_label, name) or find_model(from_state, app_label, name)
            if model is not None:
                return bool(router.allow_migrate_model(alias, model))
        return bool(router.allow_migrate(alias, app_label))
    except Exception:  # a router that fails here fails `migrate` too: review the operation
        return True


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


def facts(operation, app_label, from_state, to_state, connection) -> protocol.Facts:
    """What Django's state knows that the SQL alone does not (nullability, defaults, tables)."""
    out: protocol.Facts = {}
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


def field_facts(model, name, connection) -> protocol.FieldFacts | None:
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


def field_code(field) -> protocol.FieldCode | None:
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

    def trace(self, statements, atomic) -> list[protocol.Trace]:
        """Run the statements in rolled-back transactions; return per-statement traces."""
        traces = [{"sql": sql, "locks": [], "rewrites": [], "error": None,
                   "transactional": True, "executed": False} for sql in statements]
        groups = [traces] if atomic else [[t] for t in traces]
        for group in groups:
            if not self.traced_transaction(group, atomic):
                break
        return traces

    def traced_transaction(self, traces: list[protocol.Trace], atomic):
        with self.connection.cursor() as cursor:
            before = self.relations(cursor)
            cursor.execute("BEGIN")
            held, previous = set(), before
            try:
                for trace in traces:
                    cursor.execute(trace["sql"])
                    trace["executed"] = True
                    now, names = self.locked(cursor)
                    # by name: object ids follow the order the pre-state schema was built in
                    trace["locks"] = sorted((self.lock(oid, mode, names, before)
                                             for oid, mode in now - held if oid in names or oid in before),
                                            key=lambda lock: (lock["relation"], lock["mode"]))
                    held |= now
                    # against the state just before this statement: an earlier rewrite is not this one's
                    trace["rewrites"] = self.rewrites(previous, names)
                    previous = {**previous, **names}
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

    def locked(self, cursor):
        """The locks this session holds, and what the locked relations are now: only a locked table
        can have been rewritten, and asking for every relation after each statement costs seconds
        at a few hundred migrations."""
        cursor.execute(LOCKED_SQL)
        locks, names = set(), {}
        for oid, mode, name, kind, node, table in cursor.fetchall():
            locks.add((oid, mode))
            if name is not None:
                names[oid] = (name, kind, node, table)
        return locks, names

    def lock(self, oid, mode, names, before) -> protocol.LockRecord:
        name, kind, _node, table = names.get(oid) or before.get(oid) or (str(oid), "?", None, None)
        return {"relation": name, "mode": mode, "kind": RELKINDS.get(kind, "other"),
                "table": table, "new_in_review": oid not in self.preexisting}

    def rewrites(self, before, now):
        return sorted(name for oid, (name, kind, node, _t) in before.items()
                      if kind in ("r", "p", "m") and oid in now and now[oid][2] != node)

    def unique_indexes(self, records: list[protocol.OperationRecord]) -> list[str]:
        """The unique indexes that the records' DROP INDEX statements may drop, as they stand now."""
        drops = [sql for r in records for sql in r["statements"] + r["deferred"] if DROP_INDEX.search(sql)]
        if not drops:
            return []
        with self.connection.cursor() as cursor:
            cursor.execute(UNIQUE_INDEXES_SQL, ["\n".join(drops)])
            return sorted(row[0] for row in cursor.fetchall())

    def table_info(self, name) -> protocol.TableBefore:
        with self.connection.cursor() as cursor:
            cursor.execute(COLUMNS_SQL, [name])
            columns = {n: {"name": n, "type": t, "not_null": nn, "has_default": hd}
                       for n, t, nn, hd in cursor.fetchall()}
            cursor.execute(CHECKS_SQL, [name])
            checks = [row[0] for row in cursor.fetchall()]
        return {"name": name, "columns": columns, "valid_checks": checks}


def trace_migration(tracer, migration, records: list[protocol.OperationRecord], atomic_ddl, preexisting_names,
                    tables: dict[str, protocol.TableBefore]):
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


def review(request: protocol.ChildRequest) -> protocol.ReviewAnswer:
    started = time.monotonic()
    setup_django(request)
    import django
    from django.db import connection

    try:
        connection.ensure_connection()
        server_version = connection.pg_version
    except Exception as exc:
        raise Fatal("database", exc) from exc
    cache = StateCache(request["state_cache"]) if request.get("state_cache") else None
    aliases = database_aliases()
    if len(aliases) > 1:  # each alias rebuilds older objects from the migrations themselves,
        cache = None  # which a cached state replaces with placeholders
    loaded = load(request["targets"], cache, request.get("deleted", []))
    loader = loaded.loader
    answer = {"django_version": django.get_version(), "postgres_version": server_version,
              "unresolved": loaded.unresolved, "conflicts": conflicts(loader), "migrations": [],
              "migration_files": {f"{k[0]}.{k[1]}": p for p, k in loaded.files.items() if k in loaded.excluded},
              "state_cache": loaded.cache, "pre_state": []}
    if loaded.squashes or loaded.replaced:  # only a change with squashes has them
        answer.update(squashes=loaded.squashes, replaced=loaded.replaced)
    migrations = [loader.graph.nodes[key] for key in target_plan(loader.graph, loaded.targets, loaded.excluded)]
    answer["timings"] = {"graph": round(time.monotonic() - started, 3)}
    runsql = request.get("runsql_tables") or {}
    trace = request.get("trace", True)

    def built():
        answer["timings"]["schema"] = round(time.monotonic() - started, 3)

    if len(aliases) == 1:
        answer["migrations"] = review_on(connection, loaded, migrations, answer, (runsql, trace, built))
    else:
        answer["aliases"] = aliases
        answer["migrations"] = review_aliases(aliases, loaded, migrations, answer, (runsql, trace, built))
    answer["timings"]["total"] = round(time.monotonic() - started, 3)
    return answer


def review_on(connection, loaded, migrations, answer, run):
    """The migrations reviewed on one alias: on a pre-state of the models they need, else of all."""
    if not migrations:  # nothing runs where the base is deployed (a squash of applied migrations)
        answer["schema_models"] = 0
        run[2]()
        return []
    relations = Relations(loaded.state)
    try:
        needed = needed_models(migrations, loaded.state, relations, run[0])
    except Exception:  # an odd operation or relation: the full schema is always right
        needed = None
    answer["schema_models"] = None if needed is None else len(needed)
    outcome = None
    fast_failed = None
    if needed is not None:
        outcome = fast_review(connection, loaded, migrations, needed, relations, run)
        if isinstance(outcome, str):  # the speed-up must never cost a review its SQL
            fast_failed, outcome = outcome, None
            answer["schema_models"] = None
            reset_schema(connection)
    if outcome is None:
        outcome = full_review(connection, loaded, migrations, run, answer["pre_state"])
        if fast_failed and not any(out["error"] for out in outcome[0]):  # else the migration's own error
            answer["pre_state"].insert(0, f"the minimal pre-state failed ({fast_failed}); reviewed on the full one")
    outs, problems = outcome
    answer["pre_state"].extend(problems)
    return outs


def database_aliases():
    """The aliases to review on: every one of DATABASES when routers choose where each operation
    runs (`migrate --database ALIAS`), else `default` alone, as `migrate` and `sqlmigrate` do."""
    from django.conf import settings

    if not getattr(settings, "DATABASE_ROUTERS", None) or len(settings.DATABASES) < 2:
        return ["default"]
    return list(settings.DATABASES)


def review_aliases(aliases, loaded, migrations, answer, run):
    """The migrations reviewed on each alias in turn, each on its own pre-state (the tables and
    objects its routers allow there) in the emptied throwaway database: every alias points at it."""
    from django.db import connections

    plan = applied_plan(loaded.loader.graph, loaded.excluded)
    outs = []
    for position, alias in enumerate(aliases):
        connection = connections[alias]
        if position:
            reset_schema(connection)
        objects = object_statements((loaded.loader.graph.nodes[key] for key in plan), alias)
        notes = {**answer, "pre_state": []}
        for out in review_on(connection, dataclasses.replace(loaded, objects=objects), migrations, notes, run):
            outs.append({**out, "alias": alias})
        answer["schema_models"] = notes["schema_models"]
        answer["pre_state"] += [f"{alias}: {note}" for note in notes["pre_state"]]
        connection.close()  # idle, and holding nothing that the next alias's reset must wait for
    return outs


def fast_review(connection, loaded, migrations, needed, relations, run):
    """The review on a pre-state of only the models the change needs, or why that failed."""
    state = loaded.state.clone()  # the full review starts from the untouched state if this fails
    try:
        problems = build_pre_state(connection, loaded.objects, sub_state(state, needed))
    except Exception as exc:
        return f"{type(exc).__name__}: {first_line(exc)}"
    outs = review_all(connection, migrations, state, relations, *run)
    failed = next((out for out in outs if out["error"]), None)
    if failed is not None:
        return f"{failed['app_label']}.{failed['name']}: {failed['error']}"
    return outs, problems


def full_review(connection, loaded, migrations, run, notes):
    """The review on the pre-state of every model; when the state cannot build it, on the one
    that replaying the migrations builds, as `migrate` would."""
    problems = []
    try:
        problems = build_pre_state(connection, loaded.objects, loaded.state)
    except Exception as exc:
        notes.append(f"the pre-state could not be built from the model state ({type(exc).__name__}: "
                     f"{first_line(exc)}); built by replaying the migrations")
        try:
            reset_schema(connection)
            loader = load_graph() if loaded.cache.startswith("hit") else loaded.loader
            replay_migrations(connection, loader.graph, applied_plan(loader.graph, loaded.excluded),
                              loader.unmigrated_apps)
        except Exception as exc:
            raise Fatal("pre-state schema", exc) from exc
    return review_all(connection, migrations, loaded.state, None, *run), problems


def review_all(connection, migrations, state, relations, runsql, trace, built):
    built()
    with connection.cursor() as cursor:
        tracer = Tracer(connection, set())
        relations_now = tracer.relations(cursor)
    tracer.preexisting = set(relations_now)
    preexisting_names = {name for name, kind, _n, _t in relations_now.values() if kind in ("r", "p")}
    outs = []
    for migration in migrations:
        out, state = review_in_state(connection, tracer, migration, state, relations, runsql,
                                     preexisting_names, trace)
        outs.append(out)
    return outs


def review_in_state(connection, tracer, migration, state, relations, runsql, preexisting_names, trace):
    """Review one migration; return its answer and the state for the next one.

    With `relations`, the migration runs on a state of only the models it needs, picked from the
    whole unrendered state, which then moves on without rendering: Django re-renders every model
    related to a changed one after each operation, so the cost follows the migration, not the
    project. Without (the models cannot be known), the whole state is carried, rendered once."""
    if relations is None:
        out, after = review_migration(connection, tracer, migration, state, preexisting_names, trace)
        return out, after or state
    try:
        needed = models_needed(migration, state, relations, runsql)
    except Exception:  # an odd operation or relation: the whole state is always right
        needed = None
    local = sub_state(state, needed) if needed is not None else state
    out, after = review_migration(connection, tracer, migration, local, preexisting_names, trace)
    if after is None:
        return out, state
    state = advance(state, migration)
    relations.after(state, migration, runsql)
    return out, state


def review_migration(connection, tracer, migration, state, preexisting_names,
                     trace) -> tuple[protocol.MigrationRecord, object]:
    """The migration's answer, and the state after it (None when Django could not apply it)."""
    before = state.clone()
    after, records, collected, error = collect(connection, migration, before)
    out = {"app_label": migration.app_label, "name": migration.name,
           "atomic": bool(migration.atomic), "replaces": [list(r) for r in migration.replaces],
           "collected_sql": collected, "error": error, "operations": records,
           "tables_before": {}}
    if error is None and trace:
        if unique := tracer.unique_indexes(records):
            out["unique_indexes"] = unique
        out["error"] = trace_migration(tracer, migration, records,
                                       connection.features.can_rollback_ddl,
                                       preexisting_names, out["tables_before"])
    return out, after if error is None else None


def conflicts(loader) -> dict[str, list[str]]:
    try:
        return {app: sorted(names) for app, names in loader.detect_conflicts().items()}
    except Exception:
        return {}


if __name__ == "__main__":
    sys.exit(main(sys.argv))
