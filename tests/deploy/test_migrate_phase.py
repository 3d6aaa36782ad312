"""`manage.py migrate_phase` on a real PostgreSQL, run in a subprocess as a deploy pipeline runs it."""
from __future__ import annotations

import json
import re
import threading
import time

import pytest

pytestmark = pytest.mark.slow

ADD_PRICE = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [migrations.AddField("product", "price", models.IntegerField(null=True))]
'''

DROP_NAME = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_price")]
    operations = [migrations.RemoveField("product", "name")]
'''

BACKFILL = '''
from django.db import migrations


class Migration(migrations.Migration):
    deploy_phase = "deferred"
    dependencies = [("shop", "{after}")]
    operations = [migrations.RunSQL("UPDATE shop_product SET price = 0 WHERE price IS NULL")]
'''

INDEX_NAME = '''
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    deploy_phase = "pre-deploy"
    dependencies = [("shop", "0001_initial")]
    operations = [AddIndexConcurrently("product", models.Index(fields=["name"], name="product_name_idx"))]
'''

FAST = ["--lock-timeout", "0.2", "--backoff", "0.1"]


def output(done) -> str:
    return done.stdout + done.stderr


def report(done) -> dict:
    return json.loads(done.stdout)


def test_only_the_named_phase_is_applied_and_order_is_enforced(project):
    project.migration("0002_price", ADD_PRICE).migration("0003_drop_name", DROP_NAME)
    project.migration("0004_backfill", BACKFILL.format(after="0003_drop_name"))

    done = project.run("pre-deploy")
    assert done.returncode == 0, output(done)
    assert project.applied() == ["shop.0001_initial", "shop.0002_price"]
    assert "left for other phases: shop.0003_drop_name (post-deploy), shop.0004_backfill (deferred)" \
        in done.stdout

    early = project.run("deferred", "--format", "json")  # its dependency is post-deploy, not yet run
    assert early.returncode == 1
    assert report(early)["refused"] == [{"migration": "shop.0004_backfill", "reason": (
        "this deferred migration depends on shop.0003_drop_name (post-deploy), which is not applied "
        "yet: run `migrate_phase post-deploy` first")}]
    assert project.applied() == ["shop.0001_initial", "shop.0002_price"]

    assert project.run("post-deploy").returncode == 0
    assert project.applied()[-1] == "shop.0003_drop_name" and len(project.applied()) == 3
    assert "name" not in project.columns("shop_product")

    done = project.run("deferred", "--format", "json")
    assert done.returncode == 0, output(done)
    assert [(m["migration"], m["phase"], m["phase_from"], m["status"]) for m in report(done)["migrations"]] \
        == [("shop.0004_backfill", "deferred", "deploy_phase", "applied")]
    assert report(done)["statement_timeout"] is None  # the deferred phase has none by default

    again = project.run("deferred")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert len(project.applied()) == 4


def test_post_deploy_first_applies_the_pre_deploy_migrations_still_unapplied(project):
    project.migration("0002_price", ADD_PRICE).migration("0003_drop_name", DROP_NAME)
    done = project.run("post-deploy", "--format", "json")
    assert done.returncode == 0, output(done)
    assert [(m["migration"], m["phase"]) for m in report(done)["migrations"]] == [
        ("shop.0001_initial", "pre-deploy"), ("shop.0002_price", "pre-deploy"),
        ("shop.0003_drop_name", "post-deploy")]
    assert project.applied() == ["shop.0001_initial", "shop.0002_price", "shop.0003_drop_name"]


def test_a_pre_deploy_migration_that_needs_an_unapplied_deferred_one_is_refused(project):
    project.migration("0002_backfill", BACKFILL.format(after="0001_initial"))
    project.migration("0003_price", ADD_PRICE.replace("0001_initial", "0002_backfill"))
    plan = project.run("pre-deploy", "--plan")
    done = project.run("pre-deploy")
    assert plan.returncode == done.returncode == 1
    assert ("refused     shop.0003_price: this pre-deploy migration depends on shop.0002_backfill "
            "(deferred), which is not applied yet: run `migrate_phase deferred` first, or ship "
            "shop.0003_price in a later release") in done.stdout
    assert project.applied() == []  # the runnable 0001 waits too: nothing starts with a refusal


def test_plan_changes_nothing(project):
    project.run("pre-deploy")
    project.migration("0002_price", ADD_PRICE).migration("0003_drop_name", DROP_NAME)
    before = project.applied(), project.columns("shop_product")
    done = project.run("post-deploy", "--plan")
    assert done.returncode == 0, output(done)
    assert done.stdout.splitlines()[:2] == [
        "would apply pre-deploy  shop.0002_price  (phase from operations)",
        "would apply post-deploy shop.0003_drop_name  (phase from operations)"]
    assert (project.applied(), project.columns("shop_product")) == before


def test_a_phase_the_file_cannot_settle_is_refused_naming_the_line_to_add(project):
    project.run("pre-deploy")
    alter = '''
        from django.db import migrations, models


        class Migration(migrations.Migration):
            dependencies = [("shop", "0001_initial")]
            operations = [migrations.AlterField("product", "name", models.CharField(max_length=200))]
    '''
    project.migration("0002_longer_name", alter)
    for phase in ("pre-deploy", "post-deploy", "deferred"):
        done = project.run(phase)
        assert done.returncode == 1
        assert ('refused     shop.0002_longer_name: AlterField on line 6: what it changes (a type, NOT NULL, '
                'a constraint, an index) shows only in its SQL; add deploy_phase = "…"') in done.stdout
        assert "shop/migrations/0002_longer_name.py line 4" in done.stdout
    project.migration("0002_longer_name", alter.replace("    dependencies", '    deploy_phase = "pre-deploy"\n'
                                                         "            dependencies"))
    assert project.run("pre-deploy").returncode == 0
    assert project.applied() == ["shop.0001_initial", "shop.0002_longer_name"]


class Holder(threading.Thread):
    timed_out = False  # never released: it gave up waiting


def hold(project, sql: str, ready: threading.Event, release: threading.Event) -> Holder:
    """Another session that runs `sql` in a transaction and keeps it open until `release`."""
    def work():
        with project.connect() as conn:
            with conn.transaction():
                conn.execute(sql)
                ready.set()
                thread.timed_out = not release.wait(45)
    thread = Holder(target=work, daemon=True)
    thread.start()
    assert ready.wait(10)
    return thread


def run_releasing(project, release: threading.Event, *args: str) -> tuple[int, str]:
    """Run migrate_phase; release the other session's lock once the runner has timed out on it."""
    runner = project.start(*args)
    lines = []
    for line in runner.stdout:
        lines.append(line)
        if "lock timeout in" in line:
            release.set()
    runner.wait(60)
    lines.append(runner.stderr.read())
    runner.stdout.close()
    runner.stderr.close()
    return runner.returncode, "".join(lines)


def test_a_lock_timeout_is_retried_and_succeeds_once_the_lock_is_released(project):
    project.run("pre-deploy")
    project.migration("0002_price", ADD_PRICE)
    ready, release = threading.Event(), threading.Event()
    holder = hold(project, "SELECT count(*) FROM shop_product", ready, release)  # ACCESS SHARE
    code, text = run_releasing(project, release, "pre-deploy", *FAST, "--retries", "30")
    holder.join(10)
    assert not holder.timed_out  # released on the runner's live log line
    assert code == 0, text
    assert "lock timeout in shop.0002_price; retry 1 of 30" in text
    assert re.search(r"^applied     pre-deploy  shop.0002_price  [0-9.]+ s  [1-9][0-9]* retr", text, re.M)
    assert "price" in project.columns("shop_product")
    assert project.applied() == ["shop.0001_initial", "shop.0002_price"]


def test_a_lock_never_released_gives_up_after_the_retries_and_leaves_the_migration_unapplied(project):
    project.run("pre-deploy")
    project.migration("0002_price", ADD_PRICE)
    ready, release = threading.Event(), threading.Event()
    holder = hold(project, "SELECT count(*) FROM shop_product", ready, release)
    try:
        done = project.run("pre-deploy", *FAST, "--retries", "3")
    finally:
        release.set()
        holder.join(10)
    assert done.returncode == 1
    assert done.stdout.count("lock timeout in shop.0002_price; retry") == 3
    assert "failed      pre-deploy  shop.0002_price" in done.stdout
    assert "lock timeout after 3 retries" in done.stdout and "nothing of it is applied" in done.stdout
    assert project.applied() == ["shop.0001_initial"]
    assert "price" not in project.columns("shop_product")


def test_two_runners_started_at_once_apply_each_migration_once(project):
    project.run("pre-deploy")
    project.migration("0002_price", ADD_PRICE)
    ready, release = threading.Event(), threading.Event()
    holder = hold(project, "SELECT count(*) FROM shop_product", ready, release)  # keeps the winner busy
    runners = [project.start("pre-deploy", "--wait-for-lock", "60", "--lock-timeout", "30", "--format", "json")
               for _ in range(2)]
    try:
        wait_for(lambda: runner_lock(project) == (1, 1), runners)  # one runs, the other waits for it
    finally:
        release.set()
        holder.join(10)
    results = [finish(runner) for runner in runners]
    assert [code for code, _ in results] == [0, 0], results
    assert sorted(json.loads(text)["outcome"] for _, text in results) == ["done", "nothing to do"]
    assert project.applied() == ["shop.0001_initial", "shop.0002_price"]  # once each


def test_a_second_runner_that_may_not_wait_exits_3(project):
    project.run("pre-deploy")
    project.migration("0002_price", ADD_PRICE)
    ready, release = threading.Event(), threading.Event()
    holder = hold(project, "SELECT count(*) FROM shop_product", ready, release)
    first = project.start("pre-deploy", "--lock-timeout", "30")
    try:
        wait_for(lambda: runner_lock(project) == (1, 0), [first])
        second = project.run("pre-deploy")
    finally:
        release.set()
        holder.join(10)
    code, text = finish(first)
    assert second.returncode == 3
    assert "another migrate_phase run holds the runner lock on database 'default' (backend pid" \
        in second.stdout
    assert "CommandError: migrate_phase pre-deploy: locked" in second.stderr
    assert code == 0, text
    assert project.applied() == ["shop.0001_initial", "shop.0002_price"]


def runner_lock(project) -> tuple[int, int]:
    """(sessions holding, sessions waiting for) the runner lock."""
    with project.connect() as conn:
        return conn.execute("SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted) "
                            "FROM pg_locks WHERE locktype = 'advisory' AND classid = 1836277604 "
                            "AND objid = 1701866607").fetchone()


def wait_for(condition, runners, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        assert all(runner.poll() is None for runner in runners), [finish(r) for r in runners]
        time.sleep(0.05)


def finish(runner) -> tuple[int, str]:
    stdout, stderr = runner.communicate(timeout=120)
    return runner.returncode, stdout + stderr


def test_an_interrupted_concurrent_index_build_is_dropped_and_built_again(project):
    project.run("pre-deploy")
    project.migration("0002_index", INDEX_NAME)
    ready, release = threading.Event(), threading.Event()
    # An open writer: CREATE INDEX CONCURRENTLY waits for it, times out, and leaves an INVALID index.
    holder = hold(project, "INSERT INTO shop_product (name) VALUES ('x')", ready, release)
    code, text = run_releasing(project, release, "pre-deploy", *FAST, "--retries", "30")
    holder.join(10)
    assert not holder.timed_out  # released on the runner's live log line
    assert code == 0, text
    assert "lock timeout in shop.0002_index; retry 1 of 30" in text
    assert "dropped INVALID index public.product_name_idx, left by an interrupted concurrent build" in text
    assert index_validity(project, "product_name_idx") == [True]
    assert project.applied() == ["shop.0001_initial", "shop.0002_index"]


def test_an_invalid_index_left_by_an_earlier_run_is_dropped_first(project):
    project.run("pre-deploy")
    with project.connect() as conn:  # a build that failed half way: the index stays, INVALID
        conn.execute("INSERT INTO shop_product (name) VALUES ('same'), ('same')")
        with pytest.raises(Exception):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY product_name_idx ON shop_product (name)")
    assert index_validity(project, "product_name_idx") == [False]
    project.migration("0002_index", INDEX_NAME)
    done = project.run("pre-deploy")
    assert done.returncode == 0, output(done)
    assert "dropped INVALID index public.product_name_idx" in done.stdout
    assert index_validity(project, "product_name_idx") == [True]


def index_validity(project, name: str) -> list[bool]:
    with project.connect() as conn:
        rows = conn.execute("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                            "WHERE c.relname = %s", [name])
        return [valid for (valid,) in rows]


def test_a_non_atomic_migration_that_fails_part_way_says_what_was_applied(project):
    project.run("pre-deploy")
    project.migration("0002_index_then_fail", '''
        from django.contrib.postgres.operations import AddIndexConcurrently
        from django.db import migrations, models


        class Migration(migrations.Migration):
            atomic = False
            deploy_phase = "pre-deploy"
            dependencies = [("shop", "0001_initial")]
            operations = [
                AddIndexConcurrently("product", models.Index(fields=["name"], name="product_name_idx")),
                migrations.RunSQL("UPDATE shop_product SET name = 'x'; SELECT 1 / 0"),
            ]
    ''')
    done = project.run("pre-deploy")
    assert done.returncode == 1
    assert "It is not atomic: operation 1 (Concurrently create index product_name_idx on field(s) name of " \
           "model product) is applied; operation 2 of 2 (Raw SQL operation) failed and may be half done: " \
           "check what it left in the database" in done.stdout
    assert "`manage.py migrate --fake shop 0002_index_then_fail`" in done.stdout
    assert project.applied() == ["shop.0001_initial"]


def test_usage_errors_exit_2(project):
    assert project.run("mid-deploy").returncode == 2
    assert project.run("pre-deploy", "--retries", "-1").returncode == 2
    done = project.run("pre-deploy", "--lock-timeout", "5", "--statement-timeout", "5")
    assert done.returncode == 2 and "--lock-timeout must be shorter than --statement-timeout" in done.stderr
    assert project.run("pre-deploy", "--database", "other").returncode == 2
    assert project.applied() == []


def test_deploy_phases_have_a_statement_timeout_and_deferred_has_none(project):
    project.run("pre-deploy")
    project.migration("0002_slow", '''
        from django.db import migrations


        class Migration(migrations.Migration):
            deploy_phase = "pre-deploy"
            dependencies = [("shop", "0001_initial")]
            operations = [migrations.RunSQL("SELECT pg_sleep(1.5)")]
    ''')
    done = project.run("pre-deploy", "--statement-timeout", "0.5", "--lock-timeout", "0.2")
    assert done.returncode == 1
    assert "statement timeout (canceling statement due to statement timeout): a statement ran longer " \
           "than --statement-timeout 0.5 s; long-running work belongs to the deferred phase" in done.stdout
    assert "retry" not in done.stdout  # only lock timeouts are retried
    assert project.applied() == ["shop.0001_initial"]
    slow = (project.root / "shop" / "migrations" / "0002_slow.py")
    slow.write_text(slow.read_text().replace('"pre-deploy"', '"deferred"'))
    assert project.run("deferred", "--lock-timeout", "0.2").returncode == 0
    assert project.applied() == ["shop.0001_initial", "shop.0002_slow"]


def test_a_migration_one_cannot_edit_takes_its_phase_from_the_settings(project):
    project.migration("0002_longer_name", '''
        from django.db import migrations, models


        class Migration(migrations.Migration):
            dependencies = [("shop", "0001_initial")]
            operations = [migrations.AlterField("product", "name", models.CharField(max_length=200))]
    ''')
    project.settings('MIGRATION_SAFE_DEPLOY_PHASES = {"shop.0002_longer_name": "post-deploy"}\n')
    done = project.run("post-deploy", "--plan")
    assert "would apply post-deploy shop.0002_longer_name  (phase from MIGRATION_SAFE_DEPLOY_PHASES)" \
        in done.stdout
    project.settings('MIGRATION_SAFE_DEPLOY_PHASES = {"shop.0002_longer_name": "soon"}\n')
    done = project.run("post-deploy")
    assert done.returncode == 2
    assert "settings.MIGRATION_SAFE_DEPLOY_PHASES['shop.0002_longer_name']: unknown phase 'soon'" in done.stderr
    assert project.applied() == []


def test_content_types_and_permissions_are_created_as_migrate_creates_them(project):
    project.settings('INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", '
                     '"migration_safe.deploy", "shop"]\n')
    (project.root / "shop" / "models.py").write_text(
        "from django.db import models\n\n\nclass Product(models.Model):\n"
        "    name = models.CharField(max_length=100)\n")
    for app in ("contenttypes", "auth"):  # a new database is set up with plain migrate
        assert project.manage("migrate", app).returncode == 0
    assert shop_permissions(project) == 0
    done = project.run("pre-deploy")
    assert done.returncode == 0, output(done)
    assert shop_permissions(project) == 1


def shop_permissions(project) -> int:
    with project.connect() as conn:
        return conn.execute("SELECT count(*) FROM auth_permission p JOIN django_content_type t "
                            "ON t.id = p.content_type_id WHERE t.app_label = 'shop' "
                            "AND p.codename = 'add_product'").fetchone()[0]


def test_a_non_atomic_migration_resumes_at_the_operation_that_timed_out(project):
    project.run("pre-deploy")
    project.migration("0002_table_then_index", '''
        from django.contrib.postgres.operations import AddIndexConcurrently
        from django.db import migrations, models


        class Migration(migrations.Migration):
            atomic = False
            deploy_phase = "pre-deploy"
            dependencies = [("shop", "0001_initial")]
            operations = [
                migrations.RunSQL("CREATE TABLE shop_audit (id bigint)"),
                AddIndexConcurrently("product", models.Index(fields=["name"], name="product_name_idx")),
            ]
    ''')
    ready, release = threading.Event(), threading.Event()
    holder = hold(project, "INSERT INTO shop_product (name) VALUES ('x')", ready, release)
    code, text = run_releasing(project, release, "pre-deploy", *FAST, "--retries", "30")
    holder.join(10)
    assert not holder.timed_out  # released on the runner's live log line
    assert code == 0, text  # run again from operation 1, CREATE TABLE would fail: it exists
    assert "lock timeout in shop.0002_table_then_index; retry 1 of 30" in text
    assert index_validity(project, "product_name_idx") == [True]
    assert project.applied() == ["shop.0001_initial", "shop.0002_table_then_index"]


def test_a_migration_file_too_large_to_read_is_refused(project):
    project.migration("0002_huge", ADD_PRICE + "#" * 2_100_000 + "\n")
    done = project.run("pre-deploy")
    assert done.returncode == 1
    assert "refused     shop.0002_huge: its file could not be read (larger than 2,000,000 bytes); add " \
           "deploy_phase" in done.stdout
    assert project.applied() == []


def test_a_concurrent_build_that_never_gets_its_lock_stops_and_the_next_run_cleans_up(project):
    project.run("pre-deploy")
    project.migration("0002_index", INDEX_NAME)
    ready, release = threading.Event(), threading.Event()
    holder = hold(project, "INSERT INTO shop_product (name) VALUES ('x')", ready, release)
    try:
        done = project.run("pre-deploy", *FAST, "--retries", "1")
    finally:
        release.set()
        holder.join(10)
    assert done.returncode == 1
    assert "lock timeout after 1 retry" in done.stdout
    assert "operation 1 of 1 (Concurrently create index product_name_idx on field(s) name of model product) " \
           "failed whole: nothing of it is applied (an INVALID index it leaves is dropped by the next run " \
           "before it builds again)" in done.stdout
    assert index_validity(project, "product_name_idx") == [False]
    assert project.applied() == ["shop.0001_initial"]
    again = project.run("pre-deploy")
    assert again.returncode == 0, output(again)
    assert "dropped INVALID index public.product_name_idx" in again.stdout
    assert index_validity(project, "product_name_idx") == [True]
