"""The rules on recorded child answers (fast: no child, no PostgreSQL), and the recordings kept
equal to what the child answers now (slow)."""
from __future__ import annotations

import msgspec
import pytest

from migration_safe.engine.sandbox.protocol import ReviewAnswer
from migration_safe.engine.sandbox.run import protocol_problem

from .harness import describe, findings, line_of
from .replay import RERECORD, SCENARIOS, Scenario, comparable, load, outcome, record, replay, save

BY_NAME = pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])


@BY_NAME
def test_the_rule_fires_on_the_recorded_answer(scenario: Scenario, tmp_path):
    result = replay(load(scenario), tmp_path)
    text = scenario.text(scenario.on)
    for expected in scenario.expected:
        at = {f.line: f for f in findings(result, scenario.on, expected.rule)}
        line = line_of(text, expected.line)
        assert line in at, f"{expected.rule} not at line {line}:\n{describe(result, scenario.on)}"
        assert at[line].severity is expected.severity


@BY_NAME
def test_the_recording_follows_the_protocol(scenario: Scenario):
    """What the child sends has the types protocol.py declares, and every key of it is declared
    (the check at the boundary leaves undeclared keys alone: nothing may need one)."""
    answer = load(scenario)["answer"]
    assert protocol_problem(answer) is None
    assert msgspec.convert(answer, ReviewAnswer) == answer, "a key the child sends is not in protocol.py"


def test_every_rule_that_reads_the_childs_answer_has_a_recording():
    covered = {e.rule for s in SCENARIOS for e in s.expected}
    assert {f"MS{n}" for n in range(101, 121)} <= covered


@pytest.mark.slow
@BY_NAME
def test_the_recording_is_what_the_child_answers_now(scenario: Scenario, shop, tmp_path):
    """MIGRATION_SAFE_RERECORD=1 rewrites the recordings from this run instead."""
    recording, real = record(shop, scenario)
    if RERECORD:
        save(recording)
        return
    assert comparable(recording) == comparable(load(scenario)), \
        f"re-record: MIGRATION_SAFE_RERECORD=1 pytest tests/rules/test_recorded.py -m slow -k {scenario.name}"
    assert outcome(replay(recording, tmp_path)) == outcome(real)  # the replay is the review
