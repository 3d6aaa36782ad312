"""The child's answer is checked against protocol.py once, where it is read: an answer of another
shape (the child's process runs the project's code) is the sandbox's failure, never a crash."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from migration_safe.engine.model import Severity
from migration_safe.engine.sandbox.run import Limits, Outcome, finish

from .test_hostile_projects import hostile

RECORDING = Path(__file__).parents[2] / "rules" / "recorded" / "ms112-0002_nickname_and_price_idx.json"
RECORDED = json.loads(RECORDING.read_text())["answer"]  # a real child's answer


def read(answer) -> str | None:
    return read_bytes(json.dumps(answer).encode())


def read_bytes(answer: bytes) -> str | None:
    with tempfile.TemporaryFile() as file:
        file.write(answer)
        file.flush()
        result = finish(Outcome(), file, Limits(), [])
    assert (result.answer is None) == (result.error is not None)
    return result.error


@pytest.mark.parametrize("answer, problem", [
    ([], "Expected `object`, got `array`"),
    ({"migrations": []}, "Object missing required field `django_version`"),
    ({"fatal": {"stage": "graph", "error": "x"}}, "Object missing required field `traceback` - at `$.fatal`"),
    ({**RECORDED, "migrations": [{**RECORDED["migrations"][0], "operations": "none"}]},
     "Expected `array`, got `str` - at `$.migrations[0].operations`"),
], ids=["not an object", "keys missing", "fatal without its traceback", "a record of another shape"])
def test_an_answer_of_another_shape_is_refused_with_where(answer, problem):
    error = read(answer)
    assert error.startswith("the child's answer does not follow the protocol: ") and problem in error


def test_an_answer_nested_past_the_parser_is_refused_not_a_crash():
    assert read_bytes(b"[" * 100_000 + b"]" * 100_000) == "the child's answer was nested too deeply to read"


def test_well_formed_answers_are_read():
    assert read({"fatal": {"stage": "graph", "error": "x", "traceback": ""}}) is None
    assert read(RECORDED) is None


@pytest.mark.slow
def test_a_migration_forging_the_answer_blocks_as_sql_unavailable(shop):
    """Before the check, the review crashed on the first key the forged answer lacks."""
    forged = {"migrations": [{"app_label": "shop", "name": "0002_hostile", "operations": "none"}]}
    review, migration = hostile(shop, f"""
        os.write(int(sys.argv[2][3:]), {json.dumps(forged).encode()!r})
        os._exit(0)
    """, operations='[migrations.RunSQL("SELECT 1")]')
    found = [f for f in migration.findings if f.rule == "MS002"]
    assert found and found[0].severity is Severity.ERROR and migration.blocking
    assert "the child's answer does not follow the protocol" in found[0].message
