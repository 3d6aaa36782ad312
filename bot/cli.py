"""migration-safe command line: check | fix | demo | stats | rules | explain | ci | serve | worker."""
from __future__ import annotations

import argparse
import difflib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from migration_safe.config import ConfigError, load_config
from migration_safe.engine.fix.concurrent_index import uses_pg_migration_tools
from migration_safe.engine.fix.models_rewrite import WorkTree
from migration_safe.engine.fix.plan import plan_fixes
from migration_safe.engine.review import stats
from migration_safe.engine.review.discover import WORKTREE, GitError, git, resolve
from migration_safe.engine.review.pipeline import ReviewRequest, SetupError, run_review
from migration_safe.report import FORMATS
from migration_safe_rules import catalogue

EXIT_OK, EXIT_BLOCKING, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3
DEMO = Path(__file__).with_name("demo")
# The modules of pyproject's [app] extra, which serve, worker and ci import and the CLI does without.
APP_EXTRA = {"flask", "github", "rq", "redis", "gunicorn"}
BASE_CANDIDATES = ("origin/HEAD", "origin/main", "origin/master", "main", "master")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.run(args)
    except (ConfigError, SetupError, GitError) as exc:
        print(f"migration-safe: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAILED
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in APP_EXTRA:
            return analysis_failed(exc)
        print(f"migration-safe {args.command}: needs the [app] extra, which is not installed (no {exc.name!r}): "
              "pip install './migration-safe[app]' from a clone of migration-safe", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # never a traceback instead of a verdict: say the analysis failed
        return analysis_failed(exc)


def analysis_failed(exc: Exception) -> int:
    print(f"migration-safe: the analysis failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    if os.environ.get("MIGRATION_SAFE_DEBUG"):
        raise exc
    return EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="migration-safe",
                                     description="Review Django migrations before they hurt PostgreSQL.")
    commands = parser.add_subparsers(dest="command")
    check = commands.add_parser("check", help="review the migrations a revision adds")
    add_check_arguments(check)
    check.set_defaults(run=run_check)
    demo = commands.add_parser("demo", help="review the bundled sample project")
    demo.add_argument("--format", choices=sorted(FORMATS), default="text")
    demo.add_argument("--keep", metavar="DIR", help="build the sample repository here and keep it")
    demo.set_defaults(run=run_demo)
    fix = commands.add_parser("fix", help="rewrite the new migrations into their safe form")
    add_review_arguments(fix)
    fix.add_argument("--diff", action="store_true", help="only print the changes as a unified diff")
    fix.set_defaults(run=run_fix)
    serve = commands.add_parser("serve", help="run the webhook service (development server)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    serve.set_defaults(run=run_serve)
    ci = commands.add_parser("ci", help="review a pull request from a GitHub Actions job and publish it")
    ci.add_argument("--config", metavar="FILE", help="config file (default: the head's .github/migration-safe.yml)")
    ci.add_argument("--base", help="revision the change starts from (default: the pull request's base)")
    ci.add_argument("--python", help="interpreter that runs the project (default: config, else this one)")
    ci.add_argument("--token-env", default="GITHUB_TOKEN", metavar="NAME",
                    help="the environment variable holding the token (default: GITHUB_TOKEN)")
    ci.set_defaults(run=run_ci)
    worker = commands.add_parser("worker", help="run a queue worker on $REDIS_URL")
    worker.set_defaults(run=run_worker)
    rules = commands.add_parser("rules", help="list the rule catalogue")
    rules.set_defaults(run=run_rules)
    explain = commands.add_parser("explain", help="print one rule's documentation")
    explain.add_argument("rule", help="rule id, e.g. MS101")
    explain.set_defaults(run=run_explain)
    add_stats_command(commands)
    return parser


STATS_URL_ENV = "MIGRATION_SAFE_STATS_URL"


def add_stats_command(commands) -> None:
    command = commands.add_parser("stats", help="export production's table sizes for `tables.stats`")
    command.add_argument("--database-url", metavar="URL",
                         help=f"the database to read (default: ${STATS_URL_ENV}); a read replica and a role "
                              "with CONNECT are enough")
    command.add_argument("--output", metavar="FILE", help="write the JSON here instead of stdout")
    command.add_argument("--schema", action="append", metavar="NAME",
                         help="only this schema's tables (repeatable; default: every schema but PostgreSQL's own)")
    command.set_defaults(run=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    """Sizes only, from the catalogue: the planner's row estimates and each table's bytes."""
    url = args.database_url or os.environ.get(STATS_URL_ENV)
    if not url:
        print(f"migration-safe stats: give --database-url or set ${STATS_URL_ENV}", file=sys.stderr)
        return EXIT_USAGE
    try:
        sizes = stats.export(url, args.schema)
    except stats.StatsError as exc:
        print(f"migration-safe stats: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not sizes:  # a wrong database or schema: an empty file would silently forget every size
        print("migration-safe stats: no tables found there; nothing written", file=sys.stderr)
        return EXIT_FAILED
    if args.output:
        stats.write(Path(args.output), stats.render(sizes))
    else:
        sys.stdout.write(stats.render(sizes))
    unknown = sorted(name for name, size in sizes.items() if size.rows is None)
    never = f"; rows unknown (never analyzed: ANALYZE them): {', '.join(unknown)}" if unknown else ""
    print(f"migration-safe stats: {len(sizes)} tables{never}", file=sys.stderr)
    return EXIT_OK


def add_check_arguments(check: argparse.ArgumentParser) -> None:
    add_review_arguments(check)
    check.add_argument("--format", choices=sorted(FORMATS), default="text")
    check.add_argument("--output", metavar="FILE", help="write the report here instead of stdout")
    check.add_argument("--no-sql", action="store_true", help="text format: leave the SQL out")


def add_review_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default=".", help="the project's git repository (default: .)")
    parser.add_argument("--base", help="revision the change starts from (default: origin/HEAD, main…)")
    parser.add_argument("--head", default="HEAD", help=f"revision to review, or {WORKTREE} for the "
                                                       "uncommitted working tree (default: HEAD)")
    parser.add_argument("--config", metavar="FILE", help="config file (default: .github/migration-safe.yml)")
    parser.add_argument("--database-url", help="external PostgreSQL admin URL (default: "
                                               "$MIGRATION_SAFE_DATABASE_URL, else the embedded server)")
    parser.add_argument("--python", help="interpreter that runs the project (default: config, else this one)")
    parser.add_argument("--no-state-cache", dest="state_cache", action="store_false",
                        help="build the pre-state from every migration, and keep none for the next review")
    parser.add_argument("--install", action="store_true",
                        help="first run the config's `install:` commands into a cached, sandboxed virtualenv")


def run_fix(args: argparse.Namespace) -> int:
    """Review, then write (or print) the safe rewrites: local fixes and one migration per phase.

    Where the sandbox could not produce a migration's SQL (a concurrent build in an atomic migration
    fails it for the whole change), the rewrites that need no SQL are written first and the working
    tree is reviewed again, so one run gives the rest too."""
    repo = Path(args.repo)
    config, safer = load_config(repo, args.config), uses_pg_migration_tools(repo)
    done: list[str] = []
    for attempt in range(FIX_ROUNDS):
        review = review_from_args(args) if attempt == 0 else review_from_args(args, head=WORKTREE)
        plan = plan_fixes(review, config=config, safer=safer, tree=WorkTree(repo))
        for path, content in sorted(plan.files.items()):
            target = repo / path
            before = target.read_text(encoding="utf-8") if target.exists() else ""
            if args.diff:
                sys.stdout.writelines(difflib.unified_diff(before.splitlines(keepends=True),
                                                           content.splitlines(keepends=True),
                                                           f"a/{path}", f"b/{path}"))
            else:
                target.write_text(content, encoding="utf-8")
        done += plan.done
        if args.diff or not plan.files or not review.sql_unavailable:
            break
    for line in done:
        print(f"fixed: {line}", file=sys.stderr)
    for line in plan.notes:
        print(f"order: {line}", file=sys.stderr)
    if args.diff and plan.files and review.sql_unavailable:
        print("order: the SQL of some migrations could not be produced, so this diff has only the rewrites "
              "that need none: apply it and run `migration-safe fix` again for the rest", file=sys.stderr)
    for line in plan.left:
        print(f"left for you: {line}", file=sys.stderr)
    return EXIT_BLOCKING if plan.left else EXIT_OK


FIX_ROUNDS = 2  # a review without SQL, then one with it


def review_from_args(args: argparse.Namespace, head: str | None = None):
    repo = Path(args.repo)
    if not (repo / ".git").exists():
        try:
            git(repo, "rev-parse", "--git-dir")
        except GitError:
            raise SetupError(f"{repo} is not a git repository") from None
    return run_review(ReviewRequest(repo=repo, base=args.base or default_base(repo), head=head or args.head,
                                    config_path=args.config, database_url=args.database_url,
                                    python=args.python, install=args.install, state_cache=args.state_cache))


def run_check(args: argparse.Namespace) -> int:
    review = review_from_args(args)
    emit(review, args.format, args.output, show_sql=not args.no_sql)
    return EXIT_BLOCKING if review.blocking else EXIT_OK


def default_base(repo: Path) -> str:
    for candidate in BASE_CANDIDATES:
        try:
            resolve(repo, candidate)
            return candidate
        except GitError:
            continue
    raise SetupError("no --base given and none of origin/HEAD, origin/main, main, master exists")


def emit(review, format_name: str, output: str | None, show_sql: bool = True) -> None:
    color = format_name == "text" and output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    text = FORMATS[format_name](review, rules=catalogue(), color=color, show_sql=show_sql)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")


def run_demo(args: argparse.Namespace) -> int:
    """Build the sample project as a git repository (base, then a head adding migrations) and review it."""
    keep = Path(args.keep) if args.keep else None
    workdir = keep or Path(tempfile.mkdtemp(prefix="migration-safe-demo-"))
    try:
        repo, base = build_demo_repository(workdir)
        where = repo if keep else "a temporary git repository, removed at the end (--keep DIR keeps it)"
        print(f"Sample project: {where}; reviewing {base[:8]}..HEAD\n", file=sys.stderr)
        review = run_review(ReviewRequest(repo=repo, base=base, state_cache=False))  # a repository of its own
        emit(review, args.format, None)
        return EXIT_BLOCKING if review.blocking else EXIT_OK
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def build_demo_repository(workdir: Path) -> tuple[Path, str]:
    repo = workdir / "shop-project"
    if repo.exists():
        shutil.rmtree(repo)
    shutil.copytree(DEMO / "base", repo, ignore=shutil.ignore_patterns("__pycache__"))
    commit_all(repo, "base: shop with its initial migration", init=True)
    base = git(repo, "rev-parse", "HEAD").strip()
    shutil.copytree(DEMO / "head", repo, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    commit_all(repo, "head: new migrations to review")
    return repo, base


def commit_all(repo: Path, message: str, init: bool = False) -> None:
    env = dict(os.environ, GIT_AUTHOR_NAME="demo", GIT_AUTHOR_EMAIL="demo@example.invalid",
               GIT_COMMITTER_NAME="demo", GIT_COMMITTER_EMAIL="demo@example.invalid")
    if init:
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", message], check=True, env=env)


def run_serve(args: argparse.Namespace) -> int:
    from migration_safe.app.settings import SettingsError
    from migration_safe.app.web import create_app

    try:
        app = create_app()
    except SettingsError as exc:
        print(f"migration-safe serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    app.run(host=args.host, port=args.port)
    return EXIT_OK


def run_worker(args: argparse.Namespace) -> int:
    from migration_safe.app.settings import SettingsError
    from migration_safe.app.worker import main as worker_main

    try:
        return worker_main()
    except SettingsError as exc:
        print(f"migration-safe worker: {exc}", file=sys.stderr)
        return EXIT_USAGE


def run_ci(args: argparse.Namespace) -> int:
    from migration_safe.app import ci

    return ci.run(ci.Options(config=args.config, base=args.base, python=args.python, token_env=args.token_env))


def run_rules(args: argparse.Namespace) -> int:
    for rule in catalogue().values():
        print(f"{rule.id}  {rule.severity.value:<8} {rule.name:<32} {rule.title}")
    return EXIT_OK


def run_explain(args: argparse.Namespace) -> int:
    rule = catalogue().get(args.rule.upper())
    if rule is None:
        print(f"migration-safe: no rule {args.rule!r}; `migration-safe rules` lists them", file=sys.stderr)
        return EXIT_USAGE
    print(rule.docs)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
