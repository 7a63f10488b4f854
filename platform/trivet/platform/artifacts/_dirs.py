"""Directories as artifacts: scanning a folder safely, and its manifest.

A directory is stored as one blob per file plus a *manifest*: canonical JSON (sorted
keys, no spaces) mapping each file's relative POSIX path to its digest and size. The
directory's digest is the manifest's, so equal trees get equal digests. Only regular
files are kept (empty folders are not); a symlink is followed only when it points
inside the directory.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from trivet.errors import IntegrityError, NotFound, ValidationError

__all__ = ["FORMAT", "MEDIA_TYPE", "Member", "build_manifest", "parse_manifest", "scan", "target"]

FORMAT = "trivet.dir/1"
MEDIA_TYPE = "application/vnd.trivet.dir+json"
_DIGEST = re.compile(r"[0-9a-f]{64}")
_MAX_PATH = 4096


@dataclass(frozen=True, kw_only=True)
class Member:
    """One file of a directory artifact."""

    path: str
    digest: str
    size: int


def scan(root: Path) -> list[tuple[str, Path]]:
    """Return ``(relative POSIX path, file to read)`` for every file under ``root``, sorted.

    Raises:
        NotFound: ``root`` does not exist.
        ValidationError: ``root`` is not a folder; a symlink points outside it, is
            broken or forms a cycle; or an entry is not a regular file.
    """
    try:
        real_root = root.resolve(strict=True)
    except FileNotFoundError as exc:
        raise NotFound(f"The folder {str(root)!r} does not exist.") from exc
    except OSError as exc:
        raise ValidationError(f"The folder {str(root)!r} cannot be read: {exc.strerror}.") from exc
    if not real_root.is_dir():
        raise ValidationError(
            f"{str(root)!r} is not a folder.", hint="store a single file with put_file"
        )
    found: list[tuple[str, Path]] = []
    _visit(root, real_root, real_root, "", frozenset({real_root}), found)
    found.sort(key=lambda item: item[0])
    return found


def _visit(
    shown: Path,
    folder: Path,
    real_root: Path,
    rel: str,
    ancestors: frozenset[Path],
    found: list[tuple[str, Path]],
) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise ValidationError(
            f"The folder {str(shown / rel)!r} cannot be read: {exc.strerror}."
        ) from exc
    for entry in entries:
        name = rel + entry.name
        path = Path(entry.path)
        if "\\" in entry.name or "\x00" in entry.name:
            raise ValidationError(f"The file name {name!r} in {str(shown)!r} is not portable.")
        if entry.is_symlink():
            try:
                real = path.resolve(strict=True)
            except (OSError, RuntimeError) as exc:
                raise ValidationError(
                    f"The symlink {name!r} in {str(shown)!r} is broken or loops.",
                    hint="remove it, or replace it with the file it should point to",
                ) from exc
            if real != real_root and not real.is_relative_to(real_root):
                raise ValidationError(
                    f"The symlink {name!r} in {str(shown)!r} points outside the folder.",
                    hint="copy the folder with its links resolved (cp -rL) and store the copy",
                )
        else:
            real = path
        try:
            mode = real.stat().st_mode
        except OSError as exc:
            raise ValidationError(f"{name!r} in {str(shown)!r} cannot be read.") from exc
        if stat.S_ISDIR(mode):
            if real in ancestors:
                raise ValidationError(
                    f"The symlink {name!r} in {str(shown)!r} points to one of its own parents.",
                    hint="remove the link: it would make the folder infinitely deep",
                )
            _visit(shown, real, real_root, name + "/", ancestors | {real}, found)
        elif stat.S_ISREG(mode):
            found.append((name, real))
        else:
            raise ValidationError(
                f"{name!r} in {str(shown)!r} is not a regular file (a socket, pipe or device).",
                hint="remove it from the folder before storing it",
            )


def build_manifest(members: list[Member]) -> bytes:
    """Return the canonical JSON manifest of a directory's files."""
    files = {m.path: {"digest": m.digest, "size": m.size} for m in members}
    try:
        text = json.dumps(
            {"format": FORMAT, "files": files},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(
            "A file name in the folder is not valid UTF-8.",
            hint="rename the file so its name is valid text",
        ) from exc


def parse_manifest(data: bytes, digest: str) -> list[Member]:
    """Return the files a manifest lists, checking every path is safe to extract."""
    try:
        doc: Any = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"The directory artifact {digest} has no valid manifest.") from exc
    files = doc.get("files") if isinstance(doc, Mapping) else None
    if (
        not isinstance(doc, Mapping)
        or doc.get("format") != FORMAT
        or not isinstance(files, Mapping)
    ):
        raise IntegrityError(f"The directory artifact {digest} has no valid manifest.")
    members: list[Member] = []
    for path, entry in files.items():
        if (
            not isinstance(entry, Mapping)
            or not isinstance(entry.get("digest"), str)
            or not _DIGEST.fullmatch(entry["digest"])
            or not isinstance(entry.get("size"), int)
        ):
            raise IntegrityError(f"The manifest of {digest} has a bad entry for {path!r}.")
        check_member_path(path, digest)
        members.append(Member(path=path, digest=entry["digest"], size=entry["size"]))
    return members


def check_member_path(path: object, digest: str) -> str:
    """Return ``path`` if it is a relative path that stays inside its folder."""
    if (
        not isinstance(path, str)
        or not path
        or len(path) > _MAX_PATH
        or "\\" in path
        or "\x00" in path
        or path.startswith("/")
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise IntegrityError(f"The manifest of {digest} lists an unsafe path {path!r}.")
    return path


def target(dest: Path, path: str) -> Path:
    """Return where the member ``path`` goes under ``dest`` (checked paths only)."""
    return dest.joinpath(*PurePosixPath(path).parts)
