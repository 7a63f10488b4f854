"""Feature group definitions: features, their types, and inference from a DataFrame.

A feature group is a table of records. Each record has an identifier (the
``record_id`` column, a string or an integer), an event time (the ``event_time``
column: when the values were true, a UTC timestamp) and typed features. A
:class:`FeatureGroupSpec` says all that; :func:`infer_spec` proposes one from data for
you to review before creating the group.

Types (:class:`Dtype`, stored as these exact strings):

=================  ==========================  ==================================
``Dtype``          value                       Arrow type in the offline table
=================  ==========================  ==================================
``INT``            ``"int"``                   ``int64``
``FLOAT``          ``"float"``                 ``float64``
``STRING``         ``"string"``                ``string``
``BOOL``           ``"bool"``                  ``bool``
``TIMESTAMP``      ``"timestamp"``             ``timestamp[us, tz=UTC]``
``LIST_INT`` …     ``"list<int>"`` …           ``list<int64>`` …
=================  ==========================  ==================================

There is one list type per scalar type: ``list<int>``, ``list<float>``,
``list<string>``, ``list<bool>``, ``list<timestamp>``. Lists do not nest.

Names of groups follow the resource rule (``[a-z0-9._-]{1,64}``); names of features,
the record id and the event time follow ``[a-z_][a-z0-9_]{0,63}`` and may not start
with ``__`` (reserved for trivet's own columns).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from trivet.errors import ValidationError, did_you_mean
from trivet.platform.names import check_name

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "RESERVED_COLUMNS",
    "Dtype",
    "Feature",
    "FeatureGroup",
    "FeatureGroupSpec",
    "check_feature_name",
    "infer_spec",
]

RESERVED_COLUMNS = ("__write_time", "__deleted", "__batch")
"""trivet's own columns in every offline table (see ``docs/featurestore.md``)."""

_FEATURE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,63}")
_MAX_TEXT = 10_000
_MAX_TAGS = 64


class Dtype(StrEnum):
    """A feature's type (persisted as these exact strings)."""

    INT = "int"
    FLOAT = "float"
    STRING = "string"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    LIST_INT = "list<int>"
    LIST_FLOAT = "list<float>"
    LIST_STRING = "list<string>"
    LIST_BOOL = "list<bool>"
    LIST_TIMESTAMP = "list<timestamp>"

    @property
    def is_list(self) -> bool:
        """Whether this is a list type."""
        return self.value.startswith("list<")

    @property
    def element(self) -> Dtype:
        """The element type of a list type (the type itself for a scalar type)."""
        return Dtype(self.value[5:-1]) if self.is_list else self

    def arrow(self) -> pa.DataType:
        """Return the Arrow type this feature has in the offline table."""
        import pyarrow as pa

        scalar = {
            Dtype.INT: pa.int64(),
            Dtype.FLOAT: pa.float64(),
            Dtype.STRING: pa.string(),
            Dtype.BOOL: pa.bool_(),
            Dtype.TIMESTAMP: pa.timestamp("us", tz="UTC"),
        }[self.element]
        return pa.list_(scalar) if self.is_list else scalar

    @classmethod
    def parse(cls, value: object) -> Dtype:
        """Return the Dtype named by ``value`` (also accepts ``list[int]`` and ``list<int>``)."""
        if isinstance(value, Dtype):
            return value
        text = str(value).strip().lower().replace("[", "<").replace("]", ">").replace(" ", "")
        aliases = {"integer": "int", "int64": "int", "double": "float", "float64": "float"}
        text = aliases.get(text, text)
        try:
            return cls(text)
        except ValueError:
            raise ValidationError(
                f"{value!r} is not a feature type.",
                hint=did_you_mean(text, [d.value for d in cls])
                or "use int, float, string, bool, timestamp or list<...> of these",
            ) from None


def check_feature_name(name: object, *, what: str = "feature name") -> str:
    """Return ``name`` if it is a valid column name, else raise ValidationError.

    >>> check_feature_name("age_years")
    'age_years'
    """
    if not isinstance(name, str):
        raise ValidationError(f"The {what} must be a string, got {type(name).__name__}.")
    if name.startswith("__"):
        raise ValidationError(
            f"The {what} {name!r} starts with '__', which is reserved for trivet's columns.",
            hint="rename it, e.g. " + repr(name.lstrip("_") or "value"),
        )
    if _FEATURE_NAME.fullmatch(name) is None:
        suggestion = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")[:64]
        if suggestion and suggestion[0].isdigit():
            suggestion = "f_" + suggestion[:62]
        hint = "use lower-case letters, digits and '_', starting with a letter or '_'"
        if suggestion and _FEATURE_NAME.fullmatch(suggestion):
            hint += f", e.g. {suggestion!r}"
        raise ValidationError(f"The {what} {name!r} is not valid.", hint=hint)
    return name


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"The {what} must be a string, got {type(value).__name__}.")
    if len(value) > _MAX_TEXT:
        raise ValidationError(f"The {what} has more than {_MAX_TEXT} characters.")
    return value


@dataclass(frozen=True)
class Feature:
    """One typed column of a feature group: ``Feature("income", "float", description=...)``.

    Args:
        name: ``[a-z_][a-z0-9_]{0,63}``, not starting with ``__``.
        dtype: a :class:`Dtype` or its name (``"float"``, ``"list<int>"``…).
        description: free text, searchable.
        parameters: string key/value pairs (unit, owner, source…), searchable.
    """

    name: str
    dtype: Dtype
    _: KW_ONLY
    description: str = ""
    parameters: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_feature_name(self.name)
        object.__setattr__(self, "dtype", Dtype.parse(self.dtype))
        _check_text(self.description, f"description of feature {self.name!r}")
        if not isinstance(self.parameters, Mapping):
            raise ValidationError(
                f"The parameters of feature {self.name!r} must be a mapping of strings."
            )
        for key, value in self.parameters.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ValidationError(
                    f"The parameter {key!r} of feature {self.name!r} is not a string pair.",
                    hint="parameters map str to str, e.g. {'unit': 'EUR'}",
                )
        object.__setattr__(self, "parameters", MappingProxyType(dict(self.parameters)))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (as in a spec file)."""
        return {
            "name": self.name,
            "dtype": self.dtype.value,
            "description": self.description,
            "parameters": dict(self.parameters),
        }


@dataclass(frozen=True, kw_only=True)
class FeatureGroupSpec:
    """What a feature group holds: review it, then ``FeatureStore.create_group(spec)``.

    Args:
        name: the group's name, ``[a-z0-9._-]{1,64}``.
        record_id: the name of the column identifying a record (an entity).
        event_time: the name of the column saying when a record's values were true.
        features: the value features (not the record id or event time).
        record_id_dtype: ``Dtype.STRING`` (default) or ``Dtype.INT``.
        description: free text, searchable.
        tags: labels, searchable with ``search(tag=...)``.
        ttl: how long a record stays valid after its event time; an older record reads
            as missing online and matches no entity row in a training set. None: forever.
        online: keep the latest record per id in the online store.
        offline: keep every version of every record in the offline table.
    """

    name: str
    record_id: str
    event_time: str
    features: Sequence[Feature]
    record_id_dtype: Dtype = Dtype.STRING
    description: str = ""
    tags: Sequence[str] = ()
    ttl: dt.timedelta | None = None
    online: bool = True
    offline: bool = True

    def __post_init__(self) -> None:
        check_name(self.name, what="feature group name")
        check_feature_name(self.record_id, what="record id column")
        check_feature_name(self.event_time, what="event time column")
        if self.record_id == self.event_time:
            raise ValidationError(
                f"The record id and the event time are the same column {self.record_id!r}."
            )
        rid = Dtype.parse(self.record_id_dtype)
        if rid not in (Dtype.STRING, Dtype.INT):
            raise ValidationError(
                f"A record id must be a string or an int, not {rid.value}.",
                hint="use record_id_dtype='string' or 'int'",
            )
        object.__setattr__(self, "record_id_dtype", rid)
        features = tuple(self.features)
        seen = {self.record_id, self.event_time}
        for feat in features:
            if not isinstance(feat, Feature):
                raise ValidationError(
                    f"features must hold Feature objects, got {type(feat).__name__}.",
                    hint="e.g. Feature(name='age', dtype='int')",
                )
            if feat.name in seen:
                raise ValidationError(
                    f"The column {feat.name!r} appears twice in feature group {self.name!r}.",
                    hint="the record id and event time are not listed among the features",
                )
            seen.add(feat.name)
        object.__setattr__(self, "features", features)
        _check_text(self.description, "feature group description")
        tags = (self.tags,) if isinstance(self.tags, str) else tuple(self.tags)
        if len(tags) > _MAX_TAGS:
            raise ValidationError(f"A feature group may have at most {_MAX_TAGS} tags.")
        object.__setattr__(
            self, "tags", tuple(dict.fromkeys(check_name(t, what="tag") for t in tags))
        )
        if self.ttl is not None and (
            not isinstance(self.ttl, dt.timedelta) or self.ttl <= dt.timedelta(0)
        ):
            raise ValidationError(
                f"ttl must be a positive timedelta or None, not {self.ttl!r}.",
                hint="e.g. ttl=timedelta(days=30)",
            )
        if not (self.online or self.offline):
            raise ValidationError(
                f"Feature group {self.name!r} is neither online nor offline: it would keep nothing."
            )

    @property
    def columns(self) -> tuple[str, ...]:
        """The user columns in table order: record id, event time, features."""
        return (self.record_id, self.event_time, *(f.name for f in self.features))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (the format of a spec file for ``trivet featurestore create``)."""
        return {
            "name": self.name,
            "record_id": self.record_id,
            "record_id_dtype": self.record_id_dtype.value,
            "event_time": self.event_time,
            "features": [f.to_dict() for f in self.features],
            "description": self.description,
            "tags": list(self.tags),
            "ttl_seconds": None if self.ttl is None else self.ttl.total_seconds(),
            "online": self.online,
            "offline": self.offline,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureGroupSpec:
        """Build a spec from its JSON form (see :meth:`to_dict`)."""
        if not isinstance(data, Mapping):
            raise ValidationError("A feature group spec must be a mapping (a JSON object).")
        known = {
            "name",
            "record_id",
            "record_id_dtype",
            "event_time",
            "features",
            "description",
            "tags",
            "ttl_seconds",
            "online",
            "offline",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValidationError(
                f"The spec has unknown keys: {', '.join(map(repr, unknown))}.",
                hint=did_you_mean(unknown[0], known) or "known: " + ", ".join(sorted(known)),
            )
        for key in ("name", "record_id", "event_time"):
            if key not in data:
                raise ValidationError(f"The spec has no {key!r}.")
        feats = data.get("features", [])
        if not isinstance(feats, list):
            raise ValidationError("The spec's 'features' must be a list of objects.")
        features = []
        for item in feats:
            if not isinstance(item, Mapping) or "name" not in item or "dtype" not in item:
                raise ValidationError(
                    f"Each feature needs a 'name' and a 'dtype', got {item!r}.",
                    hint='e.g. {"name": "age", "dtype": "int"}',
                )
            features.append(
                Feature(
                    name=item["name"],
                    dtype=item["dtype"],
                    description=item.get("description", ""),
                    parameters=item.get("parameters", {}),
                )
            )
        ttl = data.get("ttl_seconds")
        if ttl is not None and (
            isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl)
        ):
            raise ValidationError(f"ttl_seconds must be a number, not {ttl!r}.")
        return cls(
            name=data["name"],
            record_id=data["record_id"],
            record_id_dtype=Dtype.parse(data.get("record_id_dtype", "string")),
            event_time=data["event_time"],
            features=features,
            description=data.get("description", ""),
            tags=tuple(data.get("tags", ())),
            ttl=None if ttl is None else dt.timedelta(seconds=ttl),
            online=bool(data.get("online", True)),
            offline=bool(data.get("offline", True)),
        )


# -- inference ------------------------------------------------------------------------
def dtype_of_arrow(arrow_type: pa.DataType) -> Dtype | None:
    """Return the Dtype that holds values of ``arrow_type``, or None if none does."""
    import pyarrow as pa
    import pyarrow.types as t

    if t.is_boolean(arrow_type):
        return Dtype.BOOL
    if t.is_integer(arrow_type):
        return Dtype.INT
    if t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return Dtype.FLOAT
    if t.is_string(arrow_type) or t.is_large_string(arrow_type):
        return Dtype.STRING
    if t.is_timestamp(arrow_type) or t.is_date(arrow_type):
        return Dtype.TIMESTAMP
    if t.is_list(arrow_type) or t.is_large_list(arrow_type):
        assert isinstance(arrow_type, pa.ListType | pa.LargeListType)
        inner = dtype_of_arrow(arrow_type.value_type)
        if inner is None or inner.is_list:
            return None
        return Dtype(f"list<{inner.value}>")
    return None


def _arrow_columns(data: pd.DataFrame | pa.Table) -> list[tuple[str, pa.DataType | None]]:
    """Return each column with its Arrow type, None where a pandas column has none."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return [(f.name, f.type) for f in data.schema]
    out: list[tuple[str, pa.DataType | None]] = []
    for name in data.columns:
        try:
            arrow_type: pa.DataType | None = pa.array(data[name], from_pandas=True).type
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            arrow_type = None
        out.append((str(name), arrow_type))
    return out


def infer_spec(
    data: pd.DataFrame | pa.Table,
    *,
    name: str,
    record_id: str,
    event_time: str,
    description: str = "",
    tags: Iterable[str] = (),
    ttl: dt.timedelta | None = None,
    online: bool = True,
    offline: bool = True,
) -> FeatureGroupSpec:
    """Propose a spec from a DataFrame or Arrow table, for review before creating.

    Every column but the record id and the event time becomes a feature, typed from
    its pandas/Arrow dtype. Nothing is stored.

    Args:
        data: a pandas DataFrame or a pyarrow Table with sample rows.
        name: the feature group's name.
        record_id: the column identifying a record (must hold strings or integers).
        event_time: the column with each record's event time (must hold timestamps).
        description, tags, ttl, online, offline: as in :class:`FeatureGroupSpec`.

    Raises:
        ValidationError: a column is missing, cannot be typed (e.g. an object column
            mixing types) or has an invalid name; the message names the column and the fix.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"id": ["a"], "ts": pd.to_datetime(["2024-01-01"], utc=True), "x": [1.5]})
    >>> [(f.name, f.dtype.value) for f in infer_spec(df, name="g", record_id="id",
    ...                                              event_time="ts").features]
    [('x', 'float')]
    """
    import pandas as pd
    import pyarrow as pa

    if not isinstance(data, pd.DataFrame | pa.Table):
        raise ValidationError(
            f"infer_spec needs a pandas DataFrame or a pyarrow Table, got {type(data).__name__}."
        )
    columns = _arrow_columns(data)
    names = [c for c, _ in columns]
    for key, what in ((record_id, "record id"), (event_time, "event time")):
        if key not in names:
            raise ValidationError(
                f"The {what} column {key!r} is not in the data.",
                hint=did_you_mean(key, names) or f"columns: {', '.join(names)}",
            )
    features: list[Feature] = []
    rid_dtype = Dtype.STRING
    for column, arrow_type in columns:
        check_feature_name(column, what="column name")
        dtype = dtype_of_arrow(arrow_type) if arrow_type is not None else None
        if arrow_type is not None and pa.types.is_null(arrow_type):
            dtype = None
        if dtype is None:
            shown = "mixed or unsupported values" if arrow_type is None else str(arrow_type)
            raise ValidationError(
                f"The column {column!r} cannot be typed: it holds {shown}.",
                hint=f"convert it first, e.g. df[{column!r}] = df[{column!r}].astype('string') "
                "or .astype('float64'), or give its Feature explicitly",
            )
        if column == record_id:
            if dtype not in (Dtype.STRING, Dtype.INT):
                raise ValidationError(
                    f"The record id column {column!r} holds {dtype.value} values.",
                    hint="a record id is a string or an int; convert the column",
                )
            rid_dtype = dtype
        elif column == event_time:
            if dtype is not Dtype.TIMESTAMP:
                raise ValidationError(
                    f"The event time column {column!r} holds {dtype.value} values, not timestamps.",
                    hint=f"convert it: df[{column!r}] = pd.to_datetime(df[{column!r}], utc=True)",
                )
        else:
            features.append(Feature(name=column, dtype=dtype))
    return FeatureGroupSpec(
        name=name,
        record_id=record_id,
        record_id_dtype=rid_dtype,
        event_time=event_time,
        features=features,
        description=description,
        tags=tuple(tags),
        ttl=ttl,
        online=online,
        offline=offline,
    )


# -- a created group ------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class FeatureGroup:
    """A feature group as the catalog holds it: its spec plus identity and history.

    ``id`` (a uuid) names its offline table and online rows; ``resource``
    (``<project>/feature_groups/<name>``) is what grants apply to.
    """

    id: str
    name: str
    project: str
    resource: str
    record_id: str
    record_id_dtype: Dtype
    event_time: str
    features: tuple[Feature, ...]
    description: str
    tags: tuple[str, ...]
    ttl: dt.timedelta | None
    online: bool
    offline: bool
    created_at: dt.datetime
    created_by: str | None
    updated_at: dt.datetime

    @property
    def spec(self) -> FeatureGroupSpec:
        """The group's definition as a spec."""
        return FeatureGroupSpec(
            name=self.name,
            record_id=self.record_id,
            record_id_dtype=self.record_id_dtype,
            event_time=self.event_time,
            features=self.features,
            description=self.description,
            tags=self.tags,
            ttl=self.ttl,
            online=self.online,
            offline=self.offline,
        )

    @property
    def columns(self) -> tuple[str, ...]:
        """The user columns in table order: record id, event time, features."""
        return (self.record_id, self.event_time, *(f.name for f in self.features))

    def feature(self, name: str) -> Feature:
        """Return the feature called ``name``."""
        for feat in self.features:
            if feat.name == name:
                return feat
        raise ValidationError(
            f"Feature group {self.name!r} has no feature {name!r}.",
            hint=did_you_mean(name, [f.name for f in self.features]),
        )

    def arrow_schema(self) -> pa.Schema:
        """Return the offline table's schema: user columns, then trivet's reserved ones."""
        import pyarrow as pa

        ts = pa.timestamp("us", tz="UTC")
        return pa.schema(
            [
                pa.field(self.record_id, self.record_id_dtype.arrow()),
                pa.field(self.event_time, ts),
                *(pa.field(f.name, f.dtype.arrow()) for f in self.features),
                pa.field("__write_time", ts),
                pa.field("__deleted", pa.bool_()),
                pa.field("__batch", pa.string()),
            ]
        )

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><td>{html.escape(f.name)}</td><td>{f.dtype.value}</td>"
            f"<td>{html.escape(f.description)}</td></tr>"
            for f in self.features
        )
        head = (
            f"<b>{html.escape(self.resource)}</b> — record id <code>{html.escape(self.record_id)}"
            f"</code>, event time <code>{html.escape(self.event_time)}</code>, ttl {self.ttl}"
        )
        return (
            f"<div>{head}<table><tr><th>feature</th><th>type</th><th>description</th></tr>"
            f"{rows}</table></div>"
        )
