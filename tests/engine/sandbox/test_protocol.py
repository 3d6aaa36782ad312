"""The child's answer is checked against protocol.py once, where it is read: an answer of another
shape (the child's process runs the project's code) is the sandbox's failure, never a crash."""
from __future__ import annotations

import json
import tempfile

import pytest

from migration_safe.engine.model import Severity
from migration_safe.engine.sandbox.run import Limits, Outcome, finish

from .test_hostile_projects import hostile


def read(answer) -> str | None:
    with tempfile.TemporaryFile() as file:
        file.write(json.dumps(answer).encode())
        file.flush()
        result = finish(Outcome(), file, Limits(), [])
    assert (result.answer is None) == (result.error is not None)
    return result.error


@pytest.mark.parametrize("answer, problem", [
    ([], "list is not a dict"),
    ({"migrations": []}, "missing required key(s)"),
    ({"fatal": {"stage": "graph", "error": "x"}}, 'missing required key(s): "traceback"'),
    ({"fatal": {"stage": "graph", "error": "x", "traceback": ""}, "migrations": []}, 'extra key(s): "migrations"'),
], ids=["not an object", "keys missing", "fatal without its traceback", "fatal and more"])
def test_an_answer_of_another_shape_is_refused_with_where(answer, problem):
    error = read(answer)
    assert error.startswith("the child's answer does not follow the protocol: ") and problem in error


def test_a_well_formed_fatal_answer_is_read():
    assert read({"fatal": {"stage": "graph", "error": "x", "traceback": ""}}) is None


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
