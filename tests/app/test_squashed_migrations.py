"""A pull request that only deletes the migrations a squash replaces is reviewed by the App."""
from __future__ import annotations

import pytest

from rules.harness import source
from rules.squashing import REPLACED, SEED, SKU, SQUASH, squash_text

pytestmark = pytest.mark.slow


def test_deleting_replaced_migrations_gets_the_notice_on_the_squash(app_harness):
    h = app_harness
    h.project.migration("shop", "0002_sku", source(f"migrations.AddField('product', {SKU[1:-2]}),"))
    h.project.migration("shop", "0003_seed", source("migrations.RunPython(seed, migrations.RunPython.noop),",
                                                    after="0002_sku", imports=SEED))
    squash = squash_text(h.project, elided=False)
    h.project.migration("shop", SQUASH, squash)
    h.project.commit("squash")
    h.project.git("branch", "-f", "feature", "main")
    h.project.git("checkout", "-q", "feature")
    for name in REPLACED:
        (h.project.root / "shop" / "migrations" / f"{name}.py").unlink()
    h.project.commit("delete the squashed migrations")
    h.project.git("checkout", "-q", "main")
    h.fake.open_pull("acme", "shop", head="feature", base="main")
    assert h.deliver("pull_request", "opened", pull=1).status_code == 202
    h.work()
    [run] = h.run()
    assert run["conclusion"] == "success", run["output"]["summary"]
    line = squash.splitlines().index("class Migration(migrations.Migration):") + 1
    notes = {(a["path"], a["start_line"], a["title"].split()[0], a["annotation_level"])
             for a in run["output"]["annotations"]}
    assert notes == {(f"shop/migrations/{SQUASH}.py", line, "MS009", "notice")}
