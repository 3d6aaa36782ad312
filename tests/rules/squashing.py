"""Squashed migrations in the `shop` fixture project, written as `squashmigrations` writes them.

The base gets 0002_sku (Product.sku) and 0003_seed (an elidable RunPython that fills it); the
squash `0001_squashed_0003_seed` replaces 0001_initial, 0002_sku and 0003_seed with three
CreateModels, the last state they leave.
"""
from __future__ import annotations

from .harness import establish, source

SQUASH = "0001_squashed_0003_seed"
REPLACED = ["0001_initial", "0002_sku", "0003_seed"]
SKU = '("sku", models.CharField(max_length=32, null=True)),'
SEED = '''
def seed(apps, schema_editor):
    Product = apps.get_model("shop", "Product")
    Product.objects.filter(sku=None).update(sku="none")
'''


BASE = (("0002_sku", source(f"migrations.AddField('product', {SKU[1:-2]}),")),
        ("0003_seed", source("migrations.RunPython(seed, migrations.RunPython.noop, elidable=True),",
                             after="0002_sku", imports=SEED)))


def establish_replaced(project) -> None:
    """The migrations the squash replaces, on the base branch (applied in production)."""
    for name, text in BASE:
        establish(project, name, text)


def squash_text(project, sku: str = SKU, elided: bool = True) -> str:
    """The squash of REPLACED: 0001_initial's CreateModels with `sku` on Product; without `elided`, it
    keeps the seed (`elidable=False` in squashmigrations' terms: kept)."""
    initial = (project.root / "shop" / "migrations" / "0001_initial.py").read_text()
    replaces = f"    replaces = {[('shop', name) for name in REPLACED]!r}\n"
    legacy = '("legacy_code", models.CharField(max_length=20, null=True)),'
    text = initial.replace("    initial = True\n", "    initial = True\n" + replaces).replace(
        legacy, f"{legacy}\n                {sku}")
    if not elided:
        kept = "        migrations.RunPython(seed, migrations.RunPython.noop),\n"
        text = text.replace("\n\nclass Migration", SEED + "\n\nclass Migration").replace(
            "    operations = [\n", "    operations = [\n" + kept)
    return text


def add_squash(project, **options) -> str:
    """Write the squash into the working tree; returns its text."""
    text = squash_text(project, **options)
    project.migration("shop", SQUASH, text)
    return text
