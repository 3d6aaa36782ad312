"""The pure parts of the deploy: a migration's phase, the plan of a run, the waits between retries."""
from __future__ import annotations

import textwrap

import pytest

from migration_safe.deploy.phase import LoadedOperation, phase_of
from migration_safe.deploy.plan import Pending, make_plan
from migration_safe.deploy.retry import Backoff
from migration_safe.engine.model import Phase
from migration_safe.engine.review.parse import parse_migration

PRE, POST, DEFERRED = Phase.PRE_DEPLOY, Phase.POST_DEPLOY, Phase.DEFERRED


def answer(body: str, loaded: list[str] | None = None, declared: object = None, third_party: bool = False):
    source = "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n" \
             + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"
    file = parse_migration(source, "shop/migrations/0002_x.py", "shop", "0002_x")
    operations = loaded if loaded is not None else [op.type for op in file.operations]
    return phase_of(file, [known(name) for name in operations], declared, third_party)


def known(name: str) -> LoadedOperation:
    return LoadedOperation(name, known=not name.startswith("Custom"))


@pytest.mark.parametrize("marker, phase, source", [
    ('deploy_phase = "post_deploy"', POST, "deploy_phase"),
    ("stage = Stage.POST_DEPLOY", POST, "syzygy stage"),
    ("safe = Safe.after_deploy()", POST, "safemigrate"),
    ("is_post_deployment = True", POST, "is_post_deployment"),
])
def test_a_declaration_in_any_vocabulary_the_review_reads_gives_the_phase(marker, phase, source):
    result = answer(f"{marker}\noperations = [migrations.AlterField('product', 'name', models.TextField())]")
    assert (result.phase, result.source, result.problem) == (phase, source, None)


def test_the_loaded_deploy_phase_wins_and_a_bad_one_is_refused_not_guessed():
    body = "operations = [migrations.AddField('product', 'price', models.IntegerField(null=True))]"
    assert answer(body, declared="deferred").phase is DEFERRED  # e.g. from a base class
    refused = answer(body, declared="later")
    assert refused.phase is None
    assert refused.problem == ("deploy_phase = 'later' is not a phase: write one of \"pre-deploy\", "
                               "\"post-deploy\", \"deferred\" in shop/migrations/0002_x.py")


@pytest.mark.parametrize("operations, phase", [
    ("migrations.AddField('product', 'price', models.IntegerField(null=True))", PRE),
    ("migrations.RemoveField('product', 'name')", POST),
    ("migrations.RunPython(migrations.RunPython.noop)", DEFERRED),
    ("migrations.RunSQL('CREATE INDEX CONCURRENTLY i ON shop_product (name)')", PRE),
    ("migrations.RunSQL('DROP TABLE shop_legacy')", POST),
    ("migrations.AlterModelOptions('product', {'ordering': ['name']})", PRE),
])
def test_without_a_declaration_the_phase_is_the_reviews_static_one(operations, phase):
    result = answer(f"operations = [{operations}]")
    assert (result.phase, result.source, result.problem) == (phase, "operations", None)


@pytest.mark.parametrize("operations, loaded, reason", [
    ("migrations.AlterField('product', 'name', models.TextField())", None,
     "AlterField on line 5: what it changes (a type, NOT NULL, a constraint, an index) shows only in its SQL"),
    ("AddIndexConcurrently('product', models.Index(fields=['name'], name='i'))", None,
     "AddIndexConcurrently on line 5: it is pre-deploy, or deferred on a large table, and the deploy does "
     "not know table sizes"),
    ("migrations.RunSQL(SQL)", None,
     "RunSQL on line 5: its SQL is not one string literal, so the file's text does not show it"),
    ("CustomBackfill('product')", None,
     "CustomBackfill on line 5: an operation of the project's own, whose database effect the file does "
     "not show"),
    ("*OPERATIONS", ["AddField"], "its operations are built in code, so the file's text does not show them"),
    ("migrations.SeparateDatabaseAndState(database_operations=[migrations.AlterField('p', 'n', F)])", None,
     "SeparateDatabaseAndState on line 5: AlterField on line 5: what it changes"),
])
def test_a_phase_the_file_alone_cannot_settle_is_refused_naming_the_line_to_add(operations, loaded, reason):
    if "SeparateDatabaseAndState" in operations:
        loaded_operations = [LoadedOperation("SeparateDatabaseAndState", True, (known("AlterField"),))]
        file_answer = phase_of(parse_migration(
            "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
            f"    operations = [{operations}]\n", "shop/migrations/0002_x.py", "shop", "0002_x"),
            loaded_operations)
    else:
        file_answer = answer(f"operations = [{operations}]", loaded)
    assert file_answer.phase is None
    assert file_answer.problem.startswith(reason)
    assert file_answer.problem.endswith('add deploy_phase = "…" (the phase the review gave it: "pre-deploy", '
                                        '"post-deploy", "deferred") to its Migration class, '
                                        "shop/migrations/0002_x.py line 4")


def test_mixed_phases_read_from_the_file_are_refused_and_a_third_party_file_gets_the_setting():
    result = answer("operations = [migrations.AddField('product', 'price', models.IntegerField(null=True)),\n"
                    "              migrations.RemoveField('product', 'name')]", third_party=True)
    assert result.phase is None
    assert result.problem == (
        "read from the file alone, its operations need different phases (AddField: pre-deploy, "
        "RemoveField: post-deploy); split it, or if the review gave it one phase, add \"shop.0002_x\": "
        "\"…\" (the phase the review gave it: \"pre-deploy\", \"post-deploy\", \"deferred\") to "
        "settings.MIGRATION_SAFE_DEPLOY_PHASES")


def test_an_unreadable_file_is_refused():
    result = answer("operations = [migrations.AddField(", loaded=["AddField"])
    assert result.phase is None and result.problem.startswith("its file could not be read (syntax error")


def pending(label: str, phase: Phase | None, *dependencies: str) -> Pending:
    return Pending(label, phase, "operations", dependencies, None if phase else "unknown phase")


def labels(items) -> list[str]:
    return [item.label for item in items]


def test_the_plan_takes_the_phase_in_plan_order_and_leaves_the_others():
    items = [pending("a.1", PRE), pending("a.2", POST, "a.1"), pending("b.1", PRE), pending("a.3", DEFERRED)]
    pre = make_plan(PRE, items)
    assert (labels(pre.run), pre.refused, labels(pre.later)) == (["a.1", "b.1"], [], ["a.2", "a.3"])
    post = make_plan(POST, items)  # pre-deploy leftovers first, in plan order
    assert labels(post.run) == ["a.1", "a.2", "b.1"] and labels(post.later) == ["a.3"]
    assert labels(make_plan(DEFERRED, [pending("a.3", DEFERRED)]).run) == ["a.3"]


def test_a_dependency_that_this_run_does_not_apply_refuses_the_migration_and_what_depends_on_it():
    items = [pending("a.1", DEFERRED), pending("a.2", PRE, "a.1"), pending("a.3", PRE, "a.2"),
             pending("b.1", PRE)]
    plan = make_plan(PRE, items)
    assert not plan.runnable and labels(plan.run) == ["b.1"]
    assert [(r.label, r.reason) for r in plan.refused] == [
        ("a.2", "this pre-deploy migration depends on a.1 (deferred), which is not applied yet: run "
                "`migrate_phase deferred` first, or ship a.2 in a later release"),
        ("a.3", "this pre-deploy migration depends on a.2, which is refused")]
    deferred = make_plan(DEFERRED, [pending("a.1", POST), pending("a.2", DEFERRED, "a.1")])
    assert [r.reason for r in deferred.refused] == [
        "this deferred migration depends on a.1 (post-deploy), which is not applied yet: run "
        "`migrate_phase post-deploy` first"]


def test_an_unsettled_migration_refuses_every_phase():
    items = [pending("a.1", None), pending("a.2", PRE)]
    for phase in Phase:
        plan = make_plan(phase, items)
        assert [(r.label, r.reason) for r in plan.refused] == [("a.1", "unknown phase")]


def test_backoff_doubles_up_to_a_cap_with_jitter_between_half_and_all():
    backoff = Backoff(1.0)
    assert [backoff.delay(n, lambda: 1.0) for n in (1, 2, 3, 6, 7, 500)] == [1, 2, 4, 30, 30, 30]
    assert [backoff.delay(n, lambda: 0.0) for n in (1, 2, 3)] == [0.5, 1, 2]
    assert Backoff(45).delay(3, lambda: 1.0) == 45  # a first wait above the cap is kept
    assert 0.05 <= Backoff(0.1).delay(1) <= 0.1
