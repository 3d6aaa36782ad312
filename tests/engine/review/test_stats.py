"""`migration-safe stats` on a real PostgreSQL, `tables.stats` read back, the sizes quoted in findings."""
from __future__ import annotations

import json
import os
import re
import secrets
import shlex
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql

from migration_safe.app.publication import annotation
from migration_safe.cli import build_parser, main
from migration_safe import config as config_module
from migration_safe.config import ConfigError, load_config
from migration_safe.engine.sandbox.database import Target, server_from_environment
from migration_safe.engine.model import TableSize
from migration_safe.engine.review.stats import bytes_text, describe, quoted, rows_text
from migration_safe.report import json_report, markdown, text
from migration_safe_rules import catalogue
from rules.harness import STATS_PATH, configure, finding, migration, review, source


def url(target: Target, user: str | None = None, password: str | None = None) -> str:
    port = f"&port={target.port}" if target.port else ""
    return (f"postgresql://{user or target.user}:{password or target.password}@/{target.name}"
            f"?host={target.host}{port}")


CONFIGURATION = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


def docs_section(title: str) -> str:
    return re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^## |^### |\Z)", CONFIGURATION.read_text(),
                     re.S | re.M).group(1)


def docs_block(title: str, language: str) -> str:
    block = re.search(rf"^( *)```{language}\n(.*?)^\1```", docs_section(title), re.S | re.M)
    return "\n".join(line.removeprefix(block.group(1)) for line in block.group(2).splitlines())


@pytest.fixture
def production():
    """A throwaway database standing for production, and a role given exactly the docs' grant:
    (target, that role's URL, that role's name)."""
    server = server_from_environment()
    role, password = f"ms_stats_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    grant = docs_block("Table statistics", "sql").replace("'change-me'", f"'{password}'")
    grant = grant.replace("migration_safe_stats", role)
    try:
        with server.throwaway() as target:
            with server.connect() as admin:
                for statement in grant.replace("DATABASE shop TO", f"DATABASE {target.name} TO").split(";"):
                    if statement.strip():
                        admin.execute(statement)
            yield target, url(target, role, password), role
    finally:
        with server.connect() as admin:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def fill(target: Target, *statements: str) -> None:
    with psycopg.connect(url(target), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def total_size(target: Target, table: str) -> int:
    with psycopg.connect(url(target)) as conn:
        return conn.execute("SELECT pg_total_relation_size(%s::regclass)", (table,)).fetchone()[0]


QUIET = "WITH (autovacuum_enabled = false)"  # sizes compared below stay as they are: no vacuum adds a map
SHOP = (
    "CREATE TABLE shop_order (id bigserial PRIMARY KEY, note text, quantity integer NOT NULL DEFAULT 1) " + QUIET,
    "INSERT INTO shop_order (note) SELECT repeat('x', 200) FROM generate_series(1, 20000)",
    "CREATE TABLE shop_customer (id bigserial PRIMARY KEY, email varchar(254) NOT NULL) " + QUIET,
    "INSERT INTO shop_customer (email) SELECT g || '@example.invalid' FROM generate_series(1, 40) g",
    "ANALYZE shop_order", "ANALYZE shop_customer",
)


def test_export_reads_the_planners_estimates_with_the_documented_grant(production, tmp_path, capsys):
    target, stats_url, role = production
    fill(target, *SHOP,
         "CREATE TABLE shop_event (id int, at date) PARTITION BY RANGE (at)",
         "CREATE TABLE shop_event_2020 PARTITION OF shop_event FOR VALUES FROM ('2020-01-01') TO ('2021-01-01') "
         + QUIET,
         "CREATE TABLE shop_event_2021 PARTITION OF shop_event FOR VALUES FROM ('2021-01-01') TO ('2022-01-01') "
         + QUIET,
         "INSERT INTO shop_event SELECT g, date '2020-06-01' + g % 400 FROM generate_series(1, 3000) g",
         "ANALYZE shop_event_2020", "ANALYZE shop_event_2021",
         # Rows the planner has never seen: no estimate is better than a wrong "0 rows, small".
         "CREATE TABLE shop_fresh (id int) " + QUIET,
         "INSERT INTO shop_fresh SELECT generate_series(1, 500)")
    out = tmp_path / "table-stats.json"

    assert main(["stats", "--database-url", stats_url, "--output", str(out)]) == 0

    written = out.read_text()
    assert json.loads(written) == {
        "shop_customer": {"rows": 40, "bytes": total_size(target, "shop_customer")},
        "shop_event": {"rows": 3000, "bytes": total_size(target, "shop_event_2020")
                       + total_size(target, "shop_event_2021")},
        "shop_fresh": {"bytes": total_size(target, "shop_fresh")},
        "shop_order": {"rows": 20000, "bytes": total_size(target, "shop_order")},
    }
    lines = written.splitlines()
    assert lines[1].startswith('  "shop_customer": {"bytes": ') and lines[-2].startswith('  "shop_order": ')
    assert "rows unknown (never analyzed: ANALYZE them): shop_fresh" in capsys.readouterr().err
    with psycopg.connect(stats_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT note FROM public.shop_order")  # the role that exports sizes cannot read a row
    with server_from_environment().connect() as admin:  # CONNECT alone is enough
        admin.execute(sql.SQL("REVOKE pg_read_all_stats FROM {}").format(sql.Identifier(role)))
    assert main(["stats", "--database-url", stats_url, "--output", str(out)]) == 0
    assert out.read_text() == written


def test_a_name_in_two_schemas_is_the_one_the_search_path_finds(production, tmp_path, capsys):
    target, stats_url, _role = production
    fill(target, "CREATE TABLE shop_order (id int)", "INSERT INTO shop_order SELECT generate_series(1, 7)",
         "CREATE SCHEMA archive", "CREATE TABLE archive.shop_order (id int)",
         "INSERT INTO archive.shop_order SELECT generate_series(1, 300)",
         "CREATE SCHEMA tenant_a", "CREATE SCHEMA tenant_b",
         "CREATE TABLE tenant_a.shop_tag (id int)", "CREATE TABLE tenant_b.shop_tag (id int)",
         "ANALYZE")
    out = tmp_path / "stats.json"

    assert main(["stats", "--database-url", stats_url, "--output", str(out)]) == 3
    assert "table shop_tag is in schemas tenant_a, tenant_b, none of them on the search_path: " \
           "choose with --schema" in capsys.readouterr().err
    assert not out.exists()

    assert main(["stats", "--database-url", stats_url, "--schema", "public", "--schema", "tenant_a",
                 "--schema", "archive", "--output", str(out)]) == 0
    assert {name: entry["rows"] for name, entry in json.loads(out.read_text()).items()} == \
           {"shop_order": 7, "shop_tag": 0}
    # Like a search path: the first schema given that has the name wins.
    assert main(["stats", "--database-url", stats_url, "--schema", "archive", "--schema", "public",
                 "--schema", "tenant_b", "--output", str(out)]) == 0
    assert {name: entry["rows"] for name, entry in json.loads(out.read_text()).items()} == \
           {"shop_order": 300, "shop_tag": 0}
    assert main(["stats", "--database-url", f"{stats_url}&options=-csearch_path%3Darchive,public",
                 "--schema", "public", "--schema", "archive", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["shop_order"]["rows"] == 7  # --schema's order, not the role's


def test_nothing_is_written_when_the_export_fails(production, tmp_path, capsys):
    target, stats_url, _role = production
    out = tmp_path / "stats.json"
    out.write_text('{"shop_order": 5}\n')
    assert main(["stats", "--database-url", stats_url, "--schema", "nosuch", "--output", str(out)]) == 3
    assert "no tables found there; nothing written" in capsys.readouterr().err
    wrong = url(target, password="not-the-password")
    assert main(["stats", "--database-url", wrong, "--output", str(out)]) == 3
    error = capsys.readouterr().err
    assert "cannot read the sizes from" in error and "not-the-password" not in error
    assert out.read_text() == '{"shop_order": 5}\n'
    assert main(["stats"]) == 2
    assert "give --database-url or set $MIGRATION_SAFE_STATS_URL" in capsys.readouterr().err


def test_a_table_locked_by_a_migration_fails_the_export_instead_of_waiting(production, tmp_path, capsys):
    target, stats_url, _role = production
    fill(target, *SHOP)
    out = tmp_path / "stats.json"
    with psycopg.connect(url(target)) as migrating:
        migrating.execute("LOCK TABLE shop_order IN ACCESS EXCLUSIVE MODE")
        assert main(["stats", "--database-url", stats_url, "--output", str(out)]) == 3
    assert "a table stayed locked for 5s (a migration running?); nothing was written" in capsys.readouterr().err
    assert not out.exists()


def test_an_exported_file_is_read_back_and_quoted_in_every_output(production, shop, tmp_path):
    target, stats_url, _role = production
    fill(target, *SHOP)
    exported = tmp_path / "exported.json"
    assert main(["stats", "--database-url", stats_url, "--output", str(exported)]) == 0
    shop.write(STATS_PATH, exported.read_text())
    configure(shop, f"tables:\n  stats: {STATS_PATH}\n")
    migration(shop, "0002_order_index", source(
        'migrations.AddIndex("order", models.Index(fields=["quantity"], name="order_quantity_idx")),'))

    result = review(shop)

    size = TableSize("shop_order", 20000, json.loads(exported.read_text())["shop_order"]["bytes"])
    found = finding(result, "0002_order_index", "MS101")
    quote = f"shop_order ({describe(size)})"
    assert describe(size).startswith("20,000 rows, ") and describe(size).endswith(" MB")
    assert f"on existing table {quote} blocks every write" in found.message
    assert found.tables == [size]
    rendered = json.loads(json_report.render(result))["migrations"][0]["findings"]
    [index] = [f for f in rendered if f["rule"] == "MS101"]
    assert index["tables"] == [{"name": "shop_order", "rows": 20000, "bytes": size.bytes}]
    assert quote in index["message"]
    assert quote in text.render(result)
    assert quote in markdown.render(result, rules=catalogue())  # the PR comment and the check run's summary
    assert quote in annotation(result.migrations[0], found, catalogue()).message  # the check run's annotation


def write_config(tmp_path: Path, tables: str, stats: object | None = None) -> None:
    (tmp_path / ".github").mkdir(exist_ok=True)
    (tmp_path / ".github" / "migration-safe.yml").write_text(f"tables:\n{tables}")
    if stats is not None:
        (tmp_path / "stats.json").write_text(json.dumps(stats))


def test_both_formats_of_the_stats_file_are_read(tmp_path):
    write_config(tmp_path, "  stats: stats.json\n", {"shop_order": {"rows": 2_000_000, "bytes": 9 << 30},
                                                     "shop_tag": 12, "shop_fresh": {"bytes": 8192}})
    config = load_config(tmp_path)
    assert config.table_size("shop_order") == TableSize("shop_order", 2_000_000, 9 << 30)
    assert config.table_size("shop_tag") == TableSize("shop_tag", 12, None)
    assert config.table_size("shop_fresh") == TableSize("shop_fresh", None, 8192)
    assert config.table_size("shop_other") is None
    assert config.is_large("shop_order") and config.is_small("shop_tag")
    assert not config.is_small("shop_fresh") and not config.is_large("shop_fresh")


@pytest.mark.parametrize("stats, complaint", [
    ([1, 2], "must map table names to"),
    ({"shop_order": -1}, "shop_order: must be"),
    ({"shop_order": True}, "shop_order: must be"),
    ({"shop_order": 2**63}, "shop_order: must be"),
    ({"shop_order": {"rows": 1, "bytes": 10**30}}, "shop_order: must be"),
    ({"shop_order": {"rows": "1"}}, "shop_order: must be"),
    ({"shop_order": {"rows": 1, "data": 2}}, "shop_order: must be"),
])
def test_a_bad_stats_file_is_an_error_naming_the_key(tmp_path, stats, complaint):
    write_config(tmp_path, "  stats: stats.json\n", stats)
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path)
    assert "tables.stats: stats.json: " in str(error.value) and complaint in str(error.value)


def test_the_stats_file_may_not_be_a_link_out_of_the_checkout(tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text('{"shop_order": 1}')
    repo = tmp_path / "repo"
    repo.mkdir()
    write_config(repo, "  stats: stats.json\n")
    (repo / "stats.json").symlink_to(outside)
    with pytest.raises(ConfigError, match="tables.stats: 'stats.json' resolves outside the repository"):
        load_config(repo)


def test_a_stats_file_over_the_cap_or_not_a_file_is_refused(tmp_path, monkeypatch):
    write_config(tmp_path, "  stats: stats.json\n", {"shop_order": 123456789})
    monkeypatch.setattr(config_module, "STATS_CAP", 16)
    with pytest.raises(ConfigError, match="tables.stats: stats.json is larger than 16 bytes"):
        load_config(tmp_path)
    (tmp_path / "stats.json").unlink()
    os.mkfifo(tmp_path / "stats.json")  # would block a plain open() forever
    with pytest.raises(ConfigError, match="tables.stats: stats.json is not a regular file"):
        load_config(tmp_path)


def test_a_stats_file_nested_past_the_parsers_limit_is_an_error(tmp_path):
    write_config(tmp_path, "  stats: stats.json\n")
    (tmp_path / "stats.json").write_text("[" * 100_000)
    with pytest.raises(ConfigError, match="tables.stats: stats.json is not valid JSON"):
        load_config(tmp_path)


def test_large_is_a_list_or_a_threshold(tmp_path):
    stats = {"shop_order": 10_000_000, "shop_item": 9_999_999, "shop_tag": 1_500_000}
    write_config(tmp_path, "  stats: stats.json\n  large_rows: 10_000_000\n  large: [shop_tag]\n", stats)
    config = load_config(tmp_path)
    assert config.large_rows == 10_000_000
    assert [config.is_large(t) for t in ("shop_order", "shop_item", "shop_tag")] == [True, False, True]
    write_config(tmp_path, "  stats: stats.json\n  large: 5_000_000\n")
    config = load_config(tmp_path)
    assert [config.is_large(t) for t in ("shop_order", "shop_item", "shop_tag")] == [True, True, False]
    write_config(tmp_path, "  stats: stats.json\n")  # no threshold: 100 × small_rows (1,000,000)
    assert [load_config(tmp_path).is_large(t) for t in ("shop_item", "shop_tag", "unknown")] == [True, True, False]
    write_config(tmp_path, "  stats: stats.json\n  small_rows: 100_000\n")
    assert [load_config(tmp_path).is_large(t) for t in ("shop_order", "shop_item")] == [True, False]


@pytest.mark.parametrize("tables, complaint", [
    ("  large: 5\n  large_rows: 6\n", "tables.large: a number of rows here and tables.large_rows: give one"),
    ("  large: shop_order\n", "tables.large: must be a list of table names or a number of rows"),
    ("  large_rows: 0\n", "tables.large_rows: must be a whole number of at least 1"),
    ("  large_rows: [1]\n", "tables.large_rows: must be a whole number"),
    ("  large: true\n", "tables.large: must be a list of table names or a number of rows"),
])
def test_a_bad_threshold_names_the_key(tmp_path, tables, complaint):
    write_config(tmp_path, tables)
    with pytest.raises(ConfigError, match=complaint.replace("[", r"\[")):
        load_config(tmp_path)


def test_sizes_read_at_a_glance():
    assert [rows_text(n) for n in (0, 1, 999, 12_345, 999_999, 1_000_000, 12_500_000, 340_000_000,
                                    1_200_000_000)] == [
        "0 rows", "1 row", "999 rows", "12,345 rows", "999,999 rows", "1 million rows", "12.5 million rows",
        "340 million rows", "1.2 billion rows"]
    assert [bytes_text(n) for n in (0, 1, 1023, 1024, 1536, 10 << 20, 340 << 30, 3 << 39, 2**63 - 1)] == [
        "0 bytes", "1 byte", "1023 bytes", "1 kB", "1.5 kB", "10 MB", "340 GB", "1.5 TB", "8192 PB"]
    assert describe(TableSize("t", rows=5)) == "5 rows" and describe(TableSize("t", bytes=8192)) == "8 kB"


def test_the_size_follows_the_tables_own_mention():
    order = TableSize("shop_order", 1_200_000_000, 340 << 30)
    # The SQL a message opens with keeps its quoted name; the prose mention gets the size.
    assert quoted('ALTER TABLE "shop_order" ALTER COLUMN "id" TYPE bigint rewrites shop_order (seen in the '
                  'sandbox).', [order]) == ('ALTER TABLE "shop_order" ALTER COLUMN "id" TYPE bigint rewrites '
                                            'shop_order (1.2 billion rows, 340 GB) (seen in the sandbox).')
    assert quoted("drops table shop_order.", [order]) == "drops table shop_order (1.2 billion rows, 340 GB)."
    # A longer name, or the table before a column, is no mention of it: the sizes go at the end.
    assert quoted("builds an index on shop_order_item; SET NOT NULL on shop_order.note", [order]) == (
        "builds an index on shop_order_item; SET NOT NULL on shop_order.note. Table sizes (tables.stats): "
        "shop_order 1.2 billion rows, 340 GB.")


def test_the_documented_job_refreshes_the_file_the_documented_config_reads():
    workflow = yaml.safe_load(docs_block("Table statistics", "yaml"))
    assert workflow[True]["schedule"][0]["cron"]  # YAML 1.1 reads the key `on` as true
    steps = workflow["jobs"]["refresh"]["steps"]
    [export] = [step for step in steps if "migration-safe stats" in step.get("run", "")]
    options = build_parser().parse_args(shlex.split(export["run"])[1:])
    assert options.run.__name__ == "run_stats" and "MIGRATION_SAFE_STATS_URL" in export["env"]
    assert steps[-1]["uses"].startswith("peter-evans/create-pull-request@")
    assert steps[-1]["with"]["add-paths"] == options.output
    tables = yaml.safe_load(docs_block("Configuration: `.github/migration-safe.yml`", "yaml"))["tables"]
    assert tables["stats"] == options.output and tables["large_rows"] == 10_000_000
