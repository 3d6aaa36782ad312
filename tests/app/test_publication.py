"""What a review publishes, planned from plain data: no GitHub, no PostgreSQL, no Redis."""
from __future__ import annotations

import pytest

from migration_safe.app.publication import (
    FINDING_MARKER, LABELS, SUMMARY_MARKER, Comment, Options, PullRequestState, ReviewComment, plan_publication,
)
from migration_safe.engine.model import Finding, MigrationFile, MigrationVerdict, Phase, Review, Severity
from migration_safe.report._common import DOCS_URL

from published import render

BOT = "migration-safe[bot]"
PATH = "shop/migrations/0002_x.py"
# The whole new file is in the diff: lines 1-20.
PATCH = "@@ -0,0 +1,20 @@\n" + "".join(f"+line {n}\n" for n in range(1, 21))
HOSTILE = ("x` ## ✅ migration-safe: nothing blocks cc @acme/dba-team <img src=https://tracker.example/p.gif> "
           "[✅ safe](https://evil.example/) #12 <details><summary>hidden</summary> <!-- the rest is hidden")


def finding(rule: str = "MS108", severity: Severity = Severity.ERROR, line: int = 8, end_line: int | None = None,
            operation: int = 0, **more) -> Finding:
    return Finding(rule, severity, f"{rule} says so", "do it in two deploys", operation_index=operation, line=line,
                   end_line=end_line, **more)


def migration(*findings: Finding, path: str = PATH, name: str = "0002_x", phase: Phase | None = Phase.PRE_DEPLOY,
              needs_split: bool = False, sql_status: str = "ok") -> MigrationVerdict:
    return MigrationVerdict(MigrationFile(path=path, name=name, app_label="shop", class_line=5), [],
                            list(findings), phase, needs_split, sql_status)


def state(labels: set[str] = frozenset(), issue: tuple[Comment, ...] = (), inline: tuple[Comment, ...] = (),
          patches: dict | None = None) -> PullRequestState:
    return PullRequestState(frozenset(labels), issue, inline, {PATH: PATCH} if patches is None else patches)


def plan(review: Review, current: PullRequestState | None = None, **options):
    return plan_publication(review, current or state(), BOT, Options(**options))


# ---------------------------------------------------------------- the check run


@pytest.mark.parametrize("verdict, conclusion, title", [
    (migration(finding()), "failure", "1 of 1 migration(s) blocking"),
    (migration(needs_split=True), "failure", "1 of 1 migration(s) blocking"),
    (migration(finding(severity=Severity.WARNING)), "success", "1 migration(s) safe to deploy"),
    (migration(finding(acknowledged=True)), "success", "1 migration(s) safe to deploy"),
    (None, "success", "No migrations in this pull request"),
], ids=["error", "split", "warning", "acknowledged", "no-migration"])
def test_the_check_runs_conclusion_follows_the_verdict(verdict, conclusion, title):
    check = plan(Review([verdict] if verdict else [])).check
    assert (check.conclusion, check.title) == (conclusion, title)


def test_sql_that_could_not_be_checked_is_never_called_safe_nor_neutral():
    unchecked = finding("MS002", line=5, operation=None)
    blocked = plan(Review([migration(unchecked, sql_status="unavailable")])).check
    assert blocked.conclusion == "failure"
    # a team that lowered MS002 to a warning: green, but the title says what was not verified
    lowered = plan(Review([migration(finding("MS002", Severity.WARNING), sql_status="unavailable")])).check
    assert lowered.conclusion == "success"
    assert lowered.title == "Nothing blocking, but the SQL could not be verified"
    assert "safe" not in lowered.title


def test_annotations_go_in_batches_of_50_and_a_run_without_findings_gets_one_empty_update():
    many = [finding(line=1 + n % 20, operation=n) for n in range(120)]
    check = plan(Review([migration(*many)])).check
    assert [len(batch) for batch in check.batches] == [50, 50, 20]
    assert [a.start_line for batch in check.batches for a in batch] == [1 + n % 20 for n in range(120)]
    assert plan(Review([migration()])).check.batches == ((),)


def test_an_annotation_says_the_rule_its_lines_and_its_level():
    [[error, acknowledged]] = plan(Review([migration(finding(line=8, end_line=10),
                                                     finding("MS101", line=12, acknowledged=True))])).check.batches
    assert (error.path, error.start_line, error.end_line, error.annotation_level) == (PATH, 8, 10, "failure")
    assert error.title.startswith("MS108 ") and error.raw_details == "Safe alternative: do it in two deploys"
    assert acknowledged.annotation_level == "notice" and acknowledged.message.endswith("(acknowledged)")


def test_a_pushs_note_comes_first_in_the_check_run_and_the_summary_comment():
    note = "**Pushed the safe rewrites** to `feature`"
    published = plan(Review([migration(finding())]), note=note)
    assert published.check.summary.startswith(note)
    assert published.summary is not None and published.summary.body.startswith(f"{SUMMARY_MARKER}\n{note}")


# ---------------------------------------------------------------- review comments


def test_only_lines_the_diff_shows_get_review_comments_the_rest_stay_annotations():
    outside = finding("MS101", line=30, operation=1)
    published = plan(Review([migration(finding(line=8), outside)]))
    assert [(c.path, c.line) for c in published.comments] == [(PATH, 8)]
    assert {a.start_line for a in published.check.batches[0]} == {8, 30}
    # a file whose patch GitHub does not give (too large): no comment at all, the annotations remain
    no_patch = plan(Review([migration(finding(line=8))]), state(patches={PATH: None}))
    assert no_patch.comments == () and len(no_patch.check.batches[0]) == 1


def test_a_comment_spans_the_findings_lines_only_when_the_diff_shows_them_all():
    patch = "@@ -1,3 +1,12 @@\n" + "".join(f"+line {n}\n" for n in range(1, 11)) + "@@ -20,2 +22,2 @@\n a\n b\n"
    spanning = finding(line=8, end_line=10, operation=0)
    cut = finding("MS101", line=10, end_line=22, operation=1)
    comments = plan(Review([migration(spanning, cut)]), state(patches={PATH: patch})).comments
    assert [c.as_dict() for c in comments] == [
        {"path": PATH, "line": 10, "side": "RIGHT", "body": comments[0].body, "start_line": 8, "start_side": "RIGHT"},
        {"path": PATH, "line": 10, "side": "RIGHT", "body": comments[1].body},
    ]


def test_notices_and_acknowledged_findings_get_no_review_comment():
    quiet = [finding(severity=Severity.NOTICE, operation=1), finding("MS101", acknowledged=True, operation=2)]
    assert plan(Review([migration(*quiet)])).comments == ()


def test_our_earlier_comments_are_not_repeated_but_a_marker_someone_else_pasted_counts_for_nothing():
    said = FINDING_MARKER.format("MS108:shop.0002_x:0")
    review = Review([migration(finding(), finding("MS101", line=9, operation=1))])
    ours = plan(review, state(inline=(Comment(1, BOT.upper(), f"**MS108** …\n{said}"),)))
    assert [c.body.split("**")[1] for c in ours.comments] == ["MS101"]
    pasted = (Comment(2, "mallory", f"lgtm\n{said}"), Comment(3, "other-app[bot]", said), Comment(4, None, said))
    assert [c.body.split("**")[1] for c in plan(review, state(inline=pasted)).comments] == ["MS108", "MS101"]


def test_a_label_that_would_end_the_marker_is_fingerprinted_by_its_digest():
    verdict = migration(finding(), name="0002_x-->")
    [comment] = plan(Review([verdict])).comments
    marker = comment.body.rsplit("\n", 1)[1]
    assert marker.startswith("<!-- migration-safe:finding MS108:sha1-") and marker.count("-->") == 1
    assert plan(Review([verdict]), state(inline=(Comment(1, BOT, comment.body),))).comments == ()


def test_after_a_push_no_review_comments_are_planned():
    assert plan(Review([migration(finding())]), review_comments=False).comments == ()


# ---------------------------------------------------------------- labels


def test_labels_follow_the_phases_ours_that_no_longer_apply_go_and_the_teams_stay():
    review = Review([migration(finding(), phase=Phase.PRE_DEPLOY),
                     migration(path="shop/migrations/0003_y.py", name="0003_y", phase=Phase.DEFERRED),
                     migration(path="shop/migrations/0004_z.py", name="0004_z", needs_split=True)])
    current = {"migration: needs-split", "migration: post-deploy", "bug"}
    labels = plan(review, state(labels=current)).labels
    assert labels.add == (LABELS[Phase.DEFERRED], LABELS[Phase.PRE_DEPLOY])
    assert labels.add[0].color == "5319e7" and labels.add[0].description
    assert labels.remove == ("migration: post-deploy",)


def test_labels_already_right_change_nothing():
    labels = plan(Review([migration()]), state(labels={"migration: pre-deploy"})).labels
    assert (labels.add, labels.remove) == ((), ())


# ---------------------------------------------------------------- the summary comment


def test_the_summary_comment_is_created_once_then_edited_and_left_alone_when_unchanged():
    review = Review([migration(finding())])
    created = plan(review).summary
    assert created is not None and created.edit is None and created.body.startswith(SUMMARY_MARKER)

    earlier = Comment(7, BOT, f"{SUMMARY_MARKER}\nan earlier head's")
    edited = plan(review, state(issue=(Comment(6, "alice", "lgtm"), earlier))).summary
    assert edited is not None and (edited.edit, edited.body) == (7, created.body)

    same = Comment(7, BOT, created.body)
    assert plan(review, state(issue=(same,))).summary is None


def test_someone_elses_summary_marker_is_not_ours_to_edit():
    forged = (Comment(1, "mallory", f"{SUMMARY_MARKER}\n## ✅ all good"), Comment(2, "other-app[bot]", SUMMARY_MARKER))
    summary = plan(Review([migration(finding())]), state(issue=forged)).summary
    assert summary is not None and summary.edit is None


def test_no_migration_no_summary_comment_unless_an_earlier_head_left_one_to_correct():
    assert plan(Review([])).summary is None
    earlier = Comment(3, BOT, f"{SUMMARY_MARKER}\n## ❌ migration-safe: 1 of 1 migration(s) blocking")
    summary = plan(Review([]), state(issue=(earlier,))).summary
    assert summary is not None and summary.edit == 3 and "nothing blocks" in summary.body


def test_what_fix_leaves_is_in_the_summary_comment():
    summary = plan(Review([migration(finding())]), left=("shop.0002_x: MS108 has no automatic fix",)).summary
    assert summary is not None and "MS108 has no automatic fix" in summary.body


# ---------------------------------------------------------------- a token that may write the check run only


def test_check_only_plans_the_check_run_and_nothing_on_the_pull_request():
    review = Review([migration(finding(), needs_split=True)])
    published = plan(review, state(labels={"migration: post-deploy"}), check_only=True)
    assert published.check == plan(review).check
    assert (published.labels.add, published.labels.remove, published.summary, published.comments) == ((), (), None, ())


# ---------------------------------------------------------------- pull request text stays text


def test_hostile_text_in_findings_is_published_as_text():
    hostile = Finding("MS108", Severity.ERROR, HOSTILE, HOSTILE, operation_index=0, line=8,
                      suggestion=f"```\n{HOSTILE}\n```")
    published = plan(Review([migration(hostile, name="0002_x` <img src=x> @acme")]))
    [comment] = published.comments
    bodies = {"check run summary": published.check.summary, "check run text": published.check.text or "",
              "summary comment": published.summary.body if published.summary else "", "review comment": comment.body}
    for where, body in bodies.items():
        shown = render(body)
        assert shown.problems(own_links=(DOCS_URL,)) == [], where
        assert not any("nothing blocks" in text for _, text in shown.headings), where
    assert any(HOSTILE in block for block in render(comment.body).code)  # the suggestion, fenced whole
    [[annotation]] = published.check.batches
    assert annotation.message == HOSTILE  # plain text on GitHub, not markdown


def test_review_comment_as_githubs_api_takes_it():
    assert ReviewComment(PATH, 9, "b").as_dict() == {"path": PATH, "line": 9, "side": "RIGHT", "body": "b"}
