"""`.github/migration-safe.yml` -> Config, validated, with errors that name the key."""
from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from migration_safe.engine.model import TableSize
from migration_safe.engine.review import stats as table_stats
from migration_safe.engine.sandbox import confined

CONFIG_PATH = ".github/migration-safe.yml"
RULE_ID = re.compile(r"^MS\d{3}$")
LEVELS = ("error", "warning", "notice", "off")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What the interpreter, the dynamic loader, libpq or the sandbox itself reads from the environment.
RESERVED_ENV = re.compile(r"(PYTHON.*|LD_.*|DYLD_.*|PG.*|PATH|HOME|TMPDIR|SHELL|ENV|BASH_ENV|IFS"
                          r"|GCONV_PATH|LOCPATH|NLSPATH|GLIBC_TUNABLES|MALLOC_.*|LANG|LANGUAGE|LC_.*"
                          r"|SSL_CERT_.*|VIRTUAL_ENV|DJANGO_SETTINGS_MODULE)", re.IGNORECASE)
STATS_CAP = 64 << 20  # table statistics of a very large schema


class ConfigError(ValueError):
    """The configuration file is unreadable or has a bad key or value."""


@dataclass
class Config:
    python: str | None = None
    django_settings: str | None = None
    django_root: str = "."
    django_environment: dict[str, str] = field(default_factory=dict)  # given to the sandbox
    postgres_version: int | None = None
    lock_timeout_managed: bool = False
    large_tables: set[str] = field(default_factory=set)
    table_rows: dict[str, int] = field(default_factory=dict)
    table_bytes: dict[str, int] = field(default_factory=dict)  # with indexes and TOAST
    small_rows: int = 10_000
    large_rows: int | None = None  # None: 100 × small_rows
    disabled_rules: set[str] = field(default_factory=set)
    severity: dict[str, str] = field(default_factory=dict)
    ignore_paths: list[str] = field(default_factory=list)
    install: list[str] = field(default_factory=list)
    autofix: str = "off"
    source: str | None = None  # the file it came from
    # Per database alias (docs/several-databases.md): the sizes of `tables.stats: {alias: path}`, and
    # `tables.large: {alias: …}` as (tables, rows threshold); None: `tables.large` is every alias's.
    alias_stats: dict[str, dict[str, TableSize]] = field(default_factory=dict)
    alias_large: dict[str, tuple[set[str], int | None]] | None = None

    def is_large(self, table: str) -> bool:
        """Long-running work on it must be deferred (listed, or known to be big)."""
        threshold = self.large_rows if self.large_rows is not None else 100 * self.small_rows
        rows = self.table_rows.get(table)
        return table in self.large_tables or (rows is not None and rows >= threshold)

    def is_small(self, table: str) -> bool:
        """Known from production stats to be small enough that a short lock does little harm."""
        rows = self.table_rows.get(table)
        return rows is not None and rows < self.small_rows and table not in self.large_tables

    def table_size(self, table: str) -> TableSize | None:
        """What the stats file says of the table, if anything."""
        if table not in self.table_rows and table not in self.table_bytes:
            return None
        return TableSize(table, self.table_rows.get(table), self.table_bytes.get(table))

    def for_alias(self, alias: str) -> Config:
        """The configuration for the tables of one database alias: `default`'s stats are the plain
        `tables.stats` (one database's export), every other alias has only its own; a plain
        `tables.large` names large tables wherever they are."""
        out = dataclasses.replace(self)
        if alias != "default":
            sizes = self.alias_stats.get(alias, {})
            out.table_rows = {name: s.rows for name, s in sizes.items() if s.rows is not None}
            out.table_bytes = {name: s.bytes for name, s in sizes.items() if s.bytes is not None}
        if self.alias_large is not None:
            out.large_tables, threshold = self.alias_large.get(alias, (set(), None))
            out.large_rows = self.alias_large.get("", (set(), None))[1] if threshold is None else threshold
        return out

    def ignores(self, path: str) -> bool:
        return any(fnmatch.fnmatch(path, pattern) for pattern in self.ignore_paths)


def load_config(repo: Path, path: str | None = None) -> Config:
    """Read the config of the project at `repo`; a missing file gives the defaults. `path` is the
    caller's own choice (the CLI's --config); the repository's file and every path it names must
    stay inside the checkout."""
    file = Path(path) if path else repo / CONFIG_PATH
    try:
        text = file.read_text(encoding="utf-8") if path else confined.read_text(repo, CONFIG_PATH)
    except FileNotFoundError:
        if path:
            raise ConfigError(f"{path}: no such file") from None
        return Config()
    except confined.Refused as exc:
        raise ConfigError(f"{CONFIG_PATH}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{display(file, repo)}: not valid UTF-8: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{display(file, repo)}: not valid YAML: {exc}") from exc
    except RecursionError:  # PyYAML's parser recurses once per level of nesting
        raise ConfigError(f"{display(file, repo)}: nested too deeply to be a configuration") from None
    return parse_config(data, file, repo)


def parse_config(data: Any, file: Path, repo: Path) -> Config:
    where = display(file, repo)
    if data is None:
        return Config(source=where)
    reader = _Reader(where)
    top = reader.mapping(data, "", {"python", "django", "postgres", "tables", "rules", "paths",
                                    "install", "autofix"})
    django = reader.mapping(top.get("django"), "django", {"settings", "root", "environment"})
    postgres = reader.mapping(top.get("postgres"), "postgres", {"version", "lock_timeout"})
    tables = reader.mapping(top.get("tables"), "tables", {"large", "large_rows", "stats", "small_rows"})
    rules = reader.mapping(top.get("rules"), "rules", {"disable", "severity"})
    paths = reader.mapping(top.get("paths"), "paths", {"ignore"})
    config = Config(
        python=reader.path_inside(top.get("python"), "python", repo),
        django_settings=reader.string(django.get("settings"), "django.settings"),
        django_root=reader.path_inside(django.get("root"), "django.root", repo) or ".",
        django_environment=reader.environment(django.get("environment"), "django.environment"),
        postgres_version=reader.integer(postgres.get("version"), "postgres.version", 10, 99),
        lock_timeout_managed=reader.choice(postgres.get("lock_timeout"), "postgres.lock_timeout",
                                           ("managed", "unmanaged"), "unmanaged") == "managed",
        small_rows=reader.integer(tables.get("small_rows"), "tables.small_rows", 0, None) or 10_000,
        disabled_rules=set(reader.rule_ids(rules.get("disable"), "rules.disable")),
        severity=reader.severities(rules.get("severity")),
        ignore_paths=reader.strings(paths.get("ignore"), "paths.ignore"),
        install=reader.commands(top.get("install"), "install"),
        autofix=reader.choice(top.get("autofix"), "autofix", ("off", "suggest", "push"), "off"),
        source=where,
    )
    config.large_tables, config.large_rows = reader.large(tables)
    if isinstance(tables.get("large"), dict):
        config.alias_large = reader.large_by_alias(tables)
        default = config.for_alias("default")
        config.large_tables, config.large_rows = default.large_tables, default.large_rows
    stats = tables.get("stats")
    if isinstance(stats, dict):
        config.alias_stats = {alias: load_stats(repo, reader.required_path(path, f"tables.stats.{alias}", repo),
                                                f"{where}: tables.stats.{alias}")
                              for alias, path in reader.aliases(stats, "tables.stats").items()}
        sizes = config.alias_stats.get("default", {})
    else:
        path = reader.path_inside(stats, "tables.stats", repo)
        sizes = load_stats(repo, path, f"{where}: tables.stats") if path else {}
    config.table_rows = {name: s.rows for name, s in sizes.items() if s.rows is not None}
    config.table_bytes = {name: s.bytes for name, s in sizes.items() if s.bytes is not None}
    return config


def load_stats(repo: Path, relative: str, where: str) -> dict[str, TableSize]:
    name = Path(relative).name
    try:
        data = json.loads(confined.read_text(repo, relative, STATS_CAP))
    except FileNotFoundError:
        raise ConfigError(f"{where}: {name} does not exist") from None
    except confined.Refused as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
        raise ConfigError(f"{where}: {name} is not valid JSON: {exc}") from exc
    try:
        return table_stats.parse(data)
    except ValueError as exc:
        raise ConfigError(f"{where}: {name}: {exc}") from None


class _Reader:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.where}: {key or 'the file'}: {message}")

    def mapping(self, value: Any, key: str, allowed: set[str]) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, "must be a mapping")
        for name in value:
            if name not in allowed:
                full = f"{key}.{name}" if key else str(name)
                raise self.fail(full, "unknown key (allowed: " + ", ".join(sorted(allowed)) + ")")
        return value

    def string(self, value: Any, key: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "must be a non-empty string")
        return value.strip()

    def path_inside(self, value: Any, key: str, repo: Path) -> str | None:
        """A path relative to the checkout that stays inside it, symlinks resolved."""
        path = self.string(value, key)
        if path is None:
            return None
        if Path(path).is_absolute():
            raise self.fail(key, f"{path!r} must be relative to the repository")
        try:
            confined.resolve_inside(repo, path)
        except confined.Refused:
            raise self.fail(key, f"{path!r} resolves outside the repository") from None
        return path

    def required_path(self, value: Any, key: str, repo: Path) -> str:
        path = self.path_inside(value, key, repo)
        if path is None:
            raise self.fail(key, "must be a path relative to the repository")
        return path

    def strings(self, value: Any, key: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, "must be a list of strings")
        return list(value)

    def large(self, tables: dict, key: str = "tables.large") -> tuple[set[str], int | None]:
        """`large` is a list of tables, or a number of rows (as `large_rows`) above which a table is."""
        listed, threshold = tables.get("large"), tables.get("large_rows")
        if isinstance(listed, dict):  # per alias: large_by_alias reads it
            return set(), self.integer(threshold, "tables.large_rows", 1, None)
        if isinstance(listed, int) and not isinstance(listed, bool):
            if threshold is not None:
                raise self.fail(key, "a number of rows here and tables.large_rows: give one")
            return set(), self.integer(listed, key, 1, None)
        if listed is not None and not isinstance(listed, list):
            raise self.fail(key, "must be a list of table names or a number of rows (or map database "
                            "aliases to these)")
        return set(self.strings(listed, key)), self.integer(threshold, "tables.large_rows", 1, None)

    def large_by_alias(self, tables: dict) -> dict[str, tuple[set[str], int | None]]:
        """`large: {alias: [tables] or rows}`; under "" the `large_rows` every alias falls back to."""
        out = {"": self.large({"large_rows": tables.get("large_rows")})}
        for alias, listed in self.aliases(tables["large"], "tables.large").items():
            if isinstance(listed, dict) or listed is None:
                raise self.fail(f"tables.large.{alias}", "must be a list of table names or a number of rows")
            out[alias] = self.large({"large": listed}, f"tables.large.{alias}")
        return out

    def aliases(self, value: dict, key: str) -> dict:
        """A mapping of database aliases (the keys of the project's DATABASES)."""
        for alias in value:
            if not isinstance(alias, str) or not alias:
                raise self.fail(key, f"{alias!r} is not a database alias")
        return value

    def commands(self, value: Any, key: str) -> list[str]:
        return [value] if isinstance(value, str) else self.strings(value, key)

    def environment(self, value: Any, key: str) -> dict[str, str]:
        """Variables for the project's settings, from this file only: never the service's own."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, "must map variable names to values")
        out = {}
        for name, text in value.items():
            if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
                raise self.fail(key, f"{name!r} is not a variable name")
            if RESERVED_ENV.fullmatch(name):
                raise self.fail(f"{key}.{name}", "may not be set: it changes the interpreter, the loader "
                                "or the sandbox's database connection")
            if isinstance(text, bool) or not isinstance(text, (str, int, float)) or "\0" in str(text):
                raise self.fail(f"{key}.{name}", "must be a string or a number")
            out[name] = str(text)
        return out

    def integer(self, value: Any, key: str, low: int, high: int | None) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
            span = f"from {low} to {high}" if high else f"of at least {low}"
            raise self.fail(key, f"must be a whole number {span}, not {value!r}")
        return value

    def choice(self, value: Any, key: str, choices: tuple[str, ...], default: str) -> str:
        if value is None:
            return default
        if "off" in choices:
            value = unquoted_off(value)
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def rule_ids(self, value: Any, key: str) -> list[str]:
        ids = self.strings(value, key)
        for rule in ids:
            if not RULE_ID.match(rule):
                raise self.fail(key, f"{rule!r} is not a rule id (MSnnn)")
        return ids

    def severities(self, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail("rules.severity", "must map rule ids to error, warning, notice or off")
        levels = {rule: unquoted_off(level) for rule, level in value.items()}
        for rule, level in levels.items():
            if not isinstance(rule, str) or not RULE_ID.match(rule):
                raise self.fail("rules.severity", f"{rule!r} is not a rule id (MSnnn)")
            if level not in LEVELS:
                raise self.fail(f"rules.severity.{rule}", f"must be one of {', '.join(LEVELS)}, not {level!r}")
        return levels


def unquoted_off(value: Any) -> Any:
    """YAML 1.1 (PyYAML) reads an unquoted `off`, `no` or `false` as False: where "off" is one of
    the choices, that is what the author wrote."""
    return "off" if value is False else value


def display(file: Path, repo: Path) -> str:
    try:
        return str(file.resolve().relative_to(repo.resolve()))
    except ValueError:
        return str(file)
