"""Which database file serves a read model, and how a rebuilt one takes over.

A read model's rows live in one SQLite file per version: ``views/NAME.sqlite``
first, ``views/NAME.<stamp>.sqlite`` for each rebuild. A small pointer file,
``views/NAME.current``, names the version being served; without it the first
version serves. Files are never renamed while open (SQLite names a database's
WAL after its path), so a rebuilt version becomes live by rewriting the
pointer — an atomic ``os.replace`` — and the old file is removed afterwards.

While a server runs, a rebuild does not rewrite the pointer itself: it leaves a
``views/NAME.ready`` marker naming the new file, and the server (see
:mod:`services.view_swap`) switches its runner and its readers over, then moves
the pointer. Every process serving the read model follows the pointer.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

FIRST_VERSION = "{name}.sqlite"
POINTER = "{name}.current"
READY = "{name}.ready"
_SIDE_FILES = ("-wal", "-shm", "-journal")


def live_path(views_dir: Path, name: str) -> Path:
    """The database file serving ``name`` now."""
    pointer = views_dir / POINTER.format(name=name)
    try:
        current = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        current = ""
    return views_dir / (current or FIRST_VERSION.format(name=name))


def new_version_path(views_dir: Path, name: str) -> Path:
    """A fresh file name for a rebuilt version of ``name`` (never the live one)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return views_dir / f"{name}.{stamp}.sqlite"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text + "\n", encoding="utf-8")
    os.replace(temporary, path)


def point_to(views_dir: Path, name: str, version: Path) -> None:
    """Make ``version`` the file serving ``name`` (atomic)."""
    _write_atomically(views_dir / POINTER.format(name=name), version.name)


def offer(views_dir: Path, name: str, version: Path) -> None:
    """Leave a rebuilt ``version`` for the running server to swap in."""
    _write_atomically(views_dir / READY.format(name=name), version.name)


def offered(views_dir: Path, name: str) -> Path | None:
    """The rebuilt version waiting to be swapped in, if any."""
    marker = views_dir / READY.format(name=name)
    try:
        text = marker.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return views_dir / text if text else None


def withdraw_offer(views_dir: Path, name: str) -> None:
    (views_dir / READY.format(name=name)).unlink(missing_ok=True)


def remove_database(path: Path) -> None:
    """Delete a database file and its side files (open handles keep working on Linux)."""
    for suffix in ("", *_SIDE_FILES):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def stale_versions(views_dir: Path, name: str) -> list[Path]:
    """Version files of ``name`` that neither serve nor wait to be swapped in."""
    keep = {live_path(views_dir, name)}
    waiting = offered(views_dir, name)
    if waiting is not None:
        keep.add(waiting)
    candidates = [views_dir / FIRST_VERSION.format(name=name)]
    candidates += views_dir.glob(f"{name}.*.sqlite")
    return sorted(p for p in candidates if p.exists() and p not in keep)
