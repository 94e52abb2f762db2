"""What every API function shares: opening the store, coercing arguments, small helpers."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

from advbench.errors import BadInput
from advbench.plans import PAPERS  # noqa: F401 (api.PAPERS; not report's: no pandas here)

NO_MODEL = "no trained model stored yet; run `advbench train` (or `advbench demo`) first"


def _db(db, create: bool = True, readonly: bool = False):
    """An open store from a path, an open store, or None (the default). readonly: a command
    that only reads (the report's), which never migrates the store in place."""
    import sqlite_utils

    from advbench.store import open_db

    if isinstance(db, sqlite_utils.Database):
        return db
    return open_db(Path(db) if db is not None else None, create=create, readonly=readonly)


def _read(db):
    """The store for a command that only reads: an existing one, never migrated in place
    (an older one is read from a migrated copy: `open_db(readonly=True)`)."""
    return _db(db, create=False, readonly=True)


def _store_path(db) -> Path | None:
    """The file of a store given as a path, an open store or None (the default: None)."""
    import sqlite_utils

    from advbench.store import db_file

    if isinstance(db, sqlite_utils.Database):
        return Path(db_file(db))
    return Path(db) if db is not None else None


def store_path(db=None) -> Path:
    """The file of the store `db` names (a path, an open store, or None: the default)."""
    from advbench.store import default_db_path

    return _store_path(db) or default_db_path()


def _store_if_any(db, readonly: bool = False):
    """The store if its file exists (or it is open), else None: for reading what is there."""
    from advbench.store import default_db_path

    exists = (_store_path(db) or default_db_path()).exists()
    return (_read(db) if readonly else _db(db, create=False)) if exists else None


def _no_bar(title: str, total: int):
    """A stand-in for the CLI's outer bar: marks nothing."""
    return nullcontext(lambda: None)


def _bars(progress):
    """A progress display from a factory (the CLI's) or nothing."""
    return progress() if progress is not None else nullcontext(None)


def _params(params) -> dict[str, Any]:
    from advbench.registry import parse_param_pairs

    if params is None:
        return {}
    if isinstance(params, dict):
        return dict(params)
    if isinstance(params, str):  # one "key=value"
        params = [params]
    if not isinstance(params, (list, tuple)) or not all(isinstance(p, str) for p in params):
        raise BadInput(f"params must be a dict or a list of 'key=value' strings, not {params!r}")
    return parse_param_pairs(list(params))


def _whole(name: str, value, low: int | None = None, high: int | None = None):
    """A whole-number argument of the API (the CLI's are parsed by typer)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{name} {value!r} must be a whole number")
    if low is not None and value < low:
        raise BadInput(f"{name} {value} must be >= {low}")
    if high is not None and value > high:
        raise BadInput(f"{name} {value} must be <= {high:,}")
    return value


def _eps(eps) -> list[float]:
    if eps is None:
        return []
    if isinstance(eps, str):
        values = []
        for part in eps.split(","):
            try:
                values.append(float(part.strip()))
            except ValueError:
                raise BadInput(f"--eps {part.strip()!r} is not a number; give a "
                               "comma-separated list such as 0.1,0.3") from None  # fmt: skip
        return values
    if isinstance(eps, bool):
        raise BadInput(f"--eps {eps!r} is not a number")
    if isinstance(eps, (int, float)):
        return [float(eps)]
    try:
        items = list(eps)
    except TypeError:
        raise BadInput(f"eps must be a number, a list of numbers or '0.1,0.3', not "
                       f"{type(eps).__name__}") from None  # fmt: skip
    for e in items:
        if isinstance(e, bool) or not isinstance(e, (int, float)):
            raise BadInput(f"--eps {e!r} is not a number; give numbers such as [0.1, 0.3]")
    return [float(e) for e in items]


def _existing_store(db):
    """A store that must already exist (no model to work on otherwise)."""
    import sqlite_utils

    from advbench.store import default_db_path

    if isinstance(db, sqlite_utils.Database):
        return db
    path = Path(db) if db is not None else default_db_path()
    if not path.exists():
        raise BadInput(NO_MODEL)
    return _db(path, create=False)


def registry(kind: str):
    """The registry behind `attack --list`, `harden --list`, `archs` and `datasets`."""
    if kind == "datasets":
        from advbench.data import DATASETS

        return DATASETS
    if kind == "attacks":
        from advbench.attacks import ATTACKS

        return ATTACKS
    if kind == "defenses":
        from advbench.defenses import DEFENSES

        return DEFENSES
    from advbench.models import ARCHS

    return ARCHS


def defense_settings(name: str):
    """A defense's settings per data-set family and the papers' recipes."""
    from advbench.defenses import family_settings

    return family_settings(name)


def check_scale(scale: str) -> None:
    from advbench.suites import SCALES

    if scale not in SCALES:
        raise BadInput(f"unknown scale {scale!r}; valid choices: {', '.join(SCALES)}")
