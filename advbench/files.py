"""Writing a named file so that a reader, or another writer of the same name, never sees
half of it (issue 31): the bytes go to a private temporary beside it, then one rename.

Two commands that write one page, figure or export at once each rename a whole file into
place; the last rename wins and the file is always one of them, whole. A failed write (a
full disk) leaves no temporary behind and names the file it was for.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_atomic(path: Path | str, data: bytes | str) -> Path:
    """`path` holds `data` (text is UTF-8), or what it held before if the write fails."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    raw = data.encode() if isinstance(data, str) else data
    try:
        tmp.write_bytes(raw)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None or Path(exc.filename) == tmp:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def temporary_beside(path: Path | str) -> Path:
    """A private temporary name beside `path` (for writers that must be given a path)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
