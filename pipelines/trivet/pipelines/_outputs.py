"""Step outputs as artifacts, serialized by type.

=====================  ===========  ==================================================
a step returns         ``kind``     stored as
=====================  ===========  ==================================================
None                   ``none``     nothing (no artifact)
pandas DataFrame,      ``parquet``  Parquet (``artifacts.put_dataframe``)
pyarrow Table
scikit-learn model     ``skops``    skops (``artifacts.put_model``; no code runs on load)
JSON data              ``json``     canonical JSON (``artifacts.put_bytes``)
=====================  ===========  ==================================================

Anything else fails the step with a message saying what to return instead.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from trivet.errors import ValidationError

if TYPE_CHECKING:
    from trivet.platform.session import Session

__all__ = ["OutputKind", "Stored", "load_output", "store_output"]

OutputKind = Literal["none", "json", "parquet", "skops"]
JSON_MEDIA_TYPE = "application/json"


@dataclass(frozen=True, kw_only=True)
class Stored:
    """Where a step's output went: its artifact digest (None for a None output)."""

    digest: str | None
    kind: OutputKind


def _is_dataframe(value: Any) -> bool:
    pd = sys.modules.get("pandas")
    pa = sys.modules.get("pyarrow")
    return (pd is not None and isinstance(value, pd.DataFrame)) or (
        pa is not None and isinstance(value, pa.Table)
    )


def _is_sklearn_model(value: Any) -> bool:
    base = sys.modules.get("sklearn.base")
    return base is not None and isinstance(value, base.BaseEstimator)


def encode_json(value: Any) -> bytes | None:
    """Return ``value`` as canonical JSON bytes, or None if it is not JSON data."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    return text.encode()


def store_output(session: Session, value: Any, *, folder: str, step: str) -> tuple[Any, Stored]:
    """Store a step's return value in ``folder``; return the value downstream steps get.

    JSON data is handed downstream as it reads back (tuples become lists), so a step
    sees the same thing whether its input was computed now or taken from the cache.

    Raises:
        ValidationError: the value is of a type trivet cannot store.
    """
    if value is None:
        return None, Stored(digest=None, kind="none")
    if _is_dataframe(value):
        ref = session.artifacts.put_dataframe(value, folder=folder, label=step)
        return value, Stored(digest=ref.digest, kind="parquet")
    if _is_sklearn_model(value):
        ref = session.artifacts.put_model(value, folder=folder, label=step)
        return value, Stored(digest=ref.digest, kind="skops")
    data = encode_json(value)
    if data is None:
        raise ValidationError(
            f"Step {step!r} returned a {type(value).__module__}.{type(value).__qualname__}, "
            "which trivet cannot store as a step output.",
            hint="return a pandas DataFrame, a scikit-learn model, JSON data (dict, list, "
            "str, numbers, bool) or None",
        )
    ref = session.artifacts.put_bytes(data, folder=folder, media_type=JSON_MEDIA_TYPE, label=step)
    return json.loads(data), Stored(digest=ref.digest, kind="json")


def load_output(session: Session, stored: Stored) -> Any:
    """Load a stored output (its bytes are verified against the digest on read)."""
    if stored.digest is None or stored.kind == "none":
        return None
    if stored.kind == "parquet":
        return session.artifacts.get_dataframe(stored.digest)
    if stored.kind == "skops":
        return session.artifacts.load_model(stored.digest)
    return json.loads(session.artifacts.get_bytes(stored.digest))
