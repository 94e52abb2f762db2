"""One small generic registry: name -> factory, typed parameters with defaults, metadata.

Datasets, architectures, defenses and attacks all register here, so `--list` output,
`--param key=value` validation and error messages come from one place.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from advbench.errors import BadInput, unknown

T = TypeVar("T")

# Integer parameters that count something done at least once (a step, a restart, a query,
# a sample): 0 or less is refused. Every other number must be finite and >= 0 (gda's
# copies=0 is plain training, so copies may be 0).
COUNTS = frozenset({"steps", "restarts", "binary_search_steps", "max_iter", "max_eval",
                    "init_eval", "init_size", "samples", "projections", "iterations",
                    "candidates", "bits", "df_steps"})  # fmt: skip
# No count beyond this: a typo like steps=1e20 would otherwise run for ever.
MAX_COUNT = 1_000_000

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Param:
    """A typed parameter with a default. `choices` restricts string values."""

    name: str
    type: type
    default: Any
    help: str = ""
    choices: tuple[str, ...] | None = None
    # Added after runs or models were stored: left out of their identity at its default,
    # so what was stored before it existed is still found.
    since: str | None = None
    # Range beyond the defaults above (inclusive); `positive`: strictly > 0.
    low: float | None = None
    high: float | None = None
    positive: bool = False

    def parse(self, raw: Any) -> Any:
        """Convert a command-line string (or a Python value) to this parameter's type."""
        try:
            if self.type is bool:
                if isinstance(raw, bool):
                    return raw
                text = str(raw).strip().lower()
                if text in _TRUE:
                    return True
                if text in _FALSE:
                    return False
                raise ValueError(raw)
            if self.type is int and isinstance(raw, float) and not raw.is_integer():
                raise ValueError(raw)  # 2.5 steps is a mistake, not 2
            value = self.type(raw)
        except (TypeError, ValueError, OverflowError):
            raise BadInput(
                f"parameter {self.name}={raw!r} is not a valid {self.type.__name__}"
            ) from None
        if self.type in (int, float):
            least = 1 if self.type is int and self.name in COUNTS else 0
            if not (math.isfinite(value) and value >= least):
                what = "an integer >= 1" if least else "a finite number >= 0"
                raise BadInput(f"parameter {self.name}={raw!r} must be {what}")
            if self.type is int and self.name in COUNTS and value > MAX_COUNT:
                raise BadInput(
                    f"parameter {self.name}={raw!r} must be at most {MAX_COUNT:,} (a count "
                    "this large would not finish)"
                )
            low = self.low if self.low is not None else least
            if (
                (self.positive and value <= 0)
                or value < low
                or (self.high is not None and value > self.high)
            ):
                high = "" if self.high is None else f", {self.high:g}]"
                span = f"({low:g}" if self.positive else f"[{low:g}"
                span += high or ", ∞)"
                raise BadInput(f"parameter {self.name}={raw!r} must be in {span}")
        if self.choices is not None and value not in self.choices:
            raise BadInput(
                f"parameter {self.name}={raw!r} is not one of: {', '.join(self.choices)}"
            )
        return value


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    factory: T
    params: tuple[Param, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    help: str = ""

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def identity(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The resolved values that identify a run or model: parameters added later
        (`since`) are left out where they keep their default."""
        later = {p.name: p.default for p in self.params if p.since}
        return {k: v for k, v in values.items() if not (k in later and v == later[k])}

    def resolve(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults filled in, overrides parsed and validated against the typed params."""
        by_name = {p.name: p for p in self.params}
        values = self.defaults()
        for key, raw in (overrides or {}).items():
            if key not in by_name:
                valid = ", ".join(sorted(by_name)) or "(none)"
                raise BadInput(f"{self.name} has no parameter {key!r}; valid: {valid}")
            values[key] = by_name[key].parse(raw)
        return values


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self,
        name: str,
        factory: T,
        *,
        params: tuple[Param, ...] = (),
        help: str = "",
        **meta: Any,
    ) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._entries[name] = Entry(name, factory, params, meta, help)
        return factory

    def get(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise unknown(self.kind, name, self._entries) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())


def parse_param_pairs(pairs: list[str] | None) -> dict[str, str]:
    """`["lambda=0.1", "projections=2"]` -> dict. Malformed or repeated keys are a BadInput."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--param {pair!r} is not of the form key=value")
        if key.strip() in out:  # a careless repeat: which one was meant?
            raise BadInput(f"--param {key.strip()} is given twice ({out[key.strip()]!r} and "
                           f"{value.strip()!r}); give it once")  # fmt: skip
        out[key.strip()] = value.strip()
    return out
