"""Git plumbing for the fake: PR files from a local repository, and smart HTTP.

Every command pins the options that user configuration could change
(quoting, prefixes, colour, external diff drivers) so the output parses the
same on any machine.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .diff import count_changes
from .state import PullFile

GIT_OPTIONS = (
    "-c", "core.quotepath=false",
    "-c", "diff.noprefix=false",
    "-c", "diff.mnemonicprefix=false",
    "-c", "color.ui=never",
)  # fmt: skip

STATUS_NAMES = {
    "A": "added",
    "D": "removed",
    "M": "modified",
    "R": "renamed",
    "C": "copied",
    "T": "changed",
}


class GitError(RuntimeError):
    pass


def git(path: Path, *args: str, stdin: bytes | None = None) -> bytes:
    result = subprocess.run(
        ["git", *GIT_OPTIONS, "-C", str(path), *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
    )
    if result.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def rev_parse(path: Path, rev: str) -> str | None:
    """Full SHA of a commit, or None when the repository does not have it."""
    try:
        return git(path, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").decode().strip()
    except GitError:
        return None


def update_ref(path: Path, ref: str, sha: str) -> None:
    git(path, "update-ref", ref, sha)


def fetch(dest: Path, source: Path, src: str, dest_ref: str) -> None:
    git(dest, "fetch", "--quiet", "--no-tags", str(source), f"+{src}:{dest_ref}")


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    tree: str
    parents: list[str]
    author_name: str
    author_email: str
    author_date: str
    committer_name: str
    committer_email: str
    committer_date: str
    message: str


def commit_info(path: Path, sha: str) -> CommitInfo | None:
    fmt = "%H%x00%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
    try:
        out = git(path, "show", "-s", f"--format={fmt}", f"{sha}^{{commit}}")
    except GitError:
        return None
    fields = out.decode(errors="replace").split("\x00")
    return CommitInfo(
        sha=fields[0],
        tree=fields[1],
        parents=fields[2].split(),
        author_name=fields[3],
        author_email=fields[4],
        author_date=fields[5],
        committer_name=fields[6],
        committer_email=fields[7],
        committer_date=fields[8],
        message=fields[9].rstrip("\n"),
    )


@dataclass(frozen=True)
class TreeEntry:
    name: str
    path: str
    type: str  # "file" | "dir" | "symlink" | "submodule"
    sha: str
    size: int


def tree_entry(path: Path, ref: str, file_path: str) -> TreeEntry | None:
    """The entry at `file_path` in commit `ref`, or None."""
    if file_path == "":
        tree = git(path, "rev-parse", f"{ref}^{{tree}}").decode().strip()
        return TreeEntry("", "", "dir", tree, 0)
    try:
        out = git(path, "ls-tree", "-z", "--long", ref, "--", file_path)
    except GitError:
        return None
    entries = _parse_ls_tree(out, parent="")
    return next((e for e in entries if e.path == file_path), None)


def list_dir(path: Path, ref: str, dir_path: str) -> list[TreeEntry]:
    spec = f"{ref}:{dir_path}" if dir_path else f"{ref}^{{tree}}"
    out = git(path, "ls-tree", "-z", "--long", spec)
    return _parse_ls_tree(out, parent=dir_path)


def _parse_ls_tree(out: bytes, parent: str) -> list[TreeEntry]:
    entries = []
    for record in out.decode(errors="replace").split("\x00"):
        if not record:
            continue
        meta, name = record.split("\t", 1)
        mode, kind, sha, size = meta.split()
        entry_type = {"tree": "dir", "commit": "submodule"}.get(kind, "file")
        if mode == "120000":
            entry_type = "symlink"
        full = f"{parent}/{name}" if parent else name
        base = full.rsplit("/", 1)[-1]
        entries.append(TreeEntry(base, full, entry_type, sha, 0 if size == "-" else int(size)))
    return entries


def read_blob(path: Path, sha: str) -> bytes:
    return git(path, "cat-file", "blob", sha)


def diff_files(path: Path, base: str, head: str) -> list[PullFile]:
    """Files of a PR the way GitHub lists them: `git diff base...head`."""
    merge_base = git(path, "merge-base", base, head).decode().strip()
    raw = git(path, "diff", "--raw", "-z", "--no-abbrev", "-M", merge_base, head)
    entries = _parse_raw(raw)
    patch = git(path, "diff", "-M", "--no-ext-diff", "--no-textconv", merge_base, head)
    sections = _split_patch(patch.decode(errors="replace"))
    if len(sections) != len(entries):
        # Type changes print as two sections; fall back to one diff per file.
        sections = [_file_patch(path, merge_base, head, e) for e in entries]
    return [_pull_file(entry, section) for entry, section in zip(entries, sections, strict=True)]


@dataclass(frozen=True)
class _RawEntry:
    status: str
    new_sha: str
    filename: str
    previous_filename: str | None


def _parse_raw(raw: bytes) -> list[_RawEntry]:
    fields = raw.decode(errors="replace").split("\x00")
    entries, i = [], 0
    while i < len(fields) and fields[i].startswith(":"):
        meta = fields[i].split()
        status, new_sha = meta[4][0], meta[3]
        if status in "RC":
            entries.append(_RawEntry(status, new_sha, fields[i + 2], fields[i + 1]))
            i += 3
        else:
            entries.append(_RawEntry(status, new_sha, fields[i + 1], None))
            i += 2
    return entries


def _split_patch(text: str) -> list[str]:
    sections: list[str] = []
    for line in text.split("\n"):
        if line.startswith("diff --git "):
            sections.append("")
        if sections:
            sections[-1] += line + "\n"
    return sections


def _file_patch(path: Path, base: str, head: str, entry: _RawEntry) -> str:
    names = [entry.filename] + ([entry.previous_filename] if entry.previous_filename else [])
    out = git(path, "diff", "-M", "--no-ext-diff", "--no-textconv", base, head, "--", *names)
    return out.decode(errors="replace")


def _pull_file(entry: _RawEntry, section: str) -> PullFile:
    hunks_at = section.find("\n@@")
    # GitHub's `patch` is the hunks alone, and is absent for binary files.
    patch = section[hunks_at + 1 :].rstrip("\n") if hunks_at >= 0 else None
    added, deleted = count_changes(patch) if patch else (0, 0)
    new_sha = entry.new_sha if entry.status != "D" else "0" * 40
    return PullFile(
        filename=entry.filename,
        status=STATUS_NAMES.get(entry.status, "modified"),
        patch=patch,
        sha=new_sha,
        previous_filename=entry.previous_filename,
        additions=added,
        deletions=deleted,
    )


@dataclass(frozen=True)
class CgiResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def http_backend(
    repo_path: Path,
    rest: str,
    method: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    remote_user: str,
) -> CgiResponse:
    """Runs `git http-backend` as CGI for one request on one repository.

    GIT_PROJECT_ROOT is the repository's parent so that any local path works;
    http-backend itself finds `name`, `name.git` or `name/.git` below it.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "GIT_PROJECT_ROOT": str(repo_path.parent),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{repo_path.name}{rest}",
        "QUERY_STRING": query,
        "REQUEST_METHOD": method,
        "CONTENT_TYPE": headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_USER": remote_user,
        "REMOTE_ADDR": "127.0.0.1",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        # GitHub lets clients fetch any reachable commit by SHA (a PR head), and refuses pushes
        # to the refs it keeps itself ("deny updating a hidden ref").
        "GIT_CONFIG_COUNT": "3",
        "GIT_CONFIG_KEY_0": "uploadpack.allowReachableSHA1InWant",
        "GIT_CONFIG_VALUE_0": "true",
        "GIT_CONFIG_KEY_1": "uploadpack.allowFilter",
        "GIT_CONFIG_VALUE_1": "true",
        "GIT_CONFIG_KEY_2": "receive.hideRefs",
        "GIT_CONFIG_VALUE_2": "refs/pull",
    }
    # CGI passes request headers as HTTP_*: http-backend needs Git-Protocol
    # (protocol v2) and Content-Encoding (gzip request bodies).
    for name, value in headers.items():
        if name == "authorization":
            continue  # already checked; the child has no use for the token
        env["HTTP_" + name.upper().replace("-", "_")] = value
    result = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=env)
    return _parse_cgi(result.stdout)


def _parse_cgi(output: bytes) -> CgiResponse:
    ends = [(at, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (at := output.find(sep)) >= 0]
    if not ends:
        return CgiResponse(502, [("Content-Type", "text/plain")], b"git http-backend failed\n")
    at, length = min(ends)
    head, body = output[:at], output[at + length :]
    status, headers = 200, []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            headers.append((name.strip(), value.strip()))
    return CgiResponse(status, headers, body)
