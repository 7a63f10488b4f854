"""Lineage: directed edges between catalog entities, queried as networkx graphs.

An edge ``src → dst`` says that ``dst`` was made from, by or with ``src``: data flows
along the arrows. :meth:`Lineage.upstream` answers "which features, data and report
went into this model version", :meth:`Lineage.downstream` "what was built from this
feature group".

A :class:`Node` is a ``kind`` from :data:`NODE_KINDS` and an ``id``: a resource path
(``credit/models/scorer/3``) or an opaque id (an artifact digest, a run id).

Visibility (who sees which node) follows the caller's grants:

* a node whose id is a resource path is visible if the caller holds the kind's
  *describe* action there (``model_version`` → ``model:describe``, ``feature_group`` →
  ``feature:describe``, ``pipeline``/``execution``/``run``/``step`` →
  ``pipeline:describe``, ``report`` → ``clarify:read_report``, ``dataset``/``artifact``
  → ``artifact:read``);
* a node whose id is an artifact digest is visible if the caller holds that action or
  ``artifact:read`` on some artifact-store folder holding the digest;
* any other opaque node (e.g. a run id, or a digest no folder holds) is visible when a
  node it is linked to is visible by one of the two rules above.

Queries leave out invisible nodes; :meth:`Lineage.upstream` and
:meth:`Lineage.downstream` also do not walk through them, so what lies only behind a
hidden node stays hidden.

Writing an edge (:meth:`Lineage.add`) needs

* the kind's *describe* action on each end (for a digest: that action or
  ``artifact:read`` on a folder holding it), and
* the *write* action of the destination's kind on the destination: ``model:register``
  for a model version or group, ``feature:write`` for a feature group,
  ``pipeline:update`` for a pipeline, ``pipeline:run`` for executions, runs and steps,
  ``clarify:run`` for a report, ``artifact:write`` for an artifact or a dataset.

Each is checked on the node's resource path, on a folder holding its digest or, for an
opaque id nothing governs (a run id), on the session's project. Parts that authorized
the operation producing an edge themselves (the model registry, the pipeline engine)
write it inside their own transaction with :func:`insert_edge`. The registry writes
``artifact → model_version`` (``stored_as``), ``report → model_version`` (``gated``) and
``run → model_version`` (``produced``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from trivet.errors import ValidationError, did_you_mean
from trivet.platform.catalog import now_utc
from trivet.platform.catalog.schema import artifact_entries, lineage_edges
from trivet.platform.names import MAX_PATH, check_resource

if TYPE_CHECKING:
    import networkx as nx

    from trivet.platform.session import Session

__all__ = [
    "NODE_KINDS",
    "Lineage",
    "Node",
    "format_tree",
    "insert_edge",
    "insert_new_edges",
]

# kind → (describe action, write action)
NODE_KINDS: Mapping[str, tuple[str, str]] = {
    "artifact": ("artifact:read", "artifact:write"),
    "dataset": ("artifact:read", "artifact:write"),
    "execution": ("pipeline:describe", "pipeline:run"),
    "feature_group": ("feature:describe", "feature:write"),
    "model_group": ("model:describe", "model:register"),
    "model_version": ("model:describe", "model:register"),
    "pipeline": ("pipeline:describe", "pipeline:update"),
    "report": ("clarify:read_report", "clarify:run"),
    "run": ("pipeline:describe", "pipeline:run"),
    "step": ("pipeline:describe", "pipeline:run"),
}
"""The node kinds, each with the action that shows it and the action that links to it."""

_RELATION = re.compile(r"[a-z_]{1,32}")
_OPAQUE = re.compile(r"[a-z0-9][a-z0-9._:-]{0,127}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_BATCH = 500


@dataclass(frozen=True, order=True)
class Node:
    """One entity in the lineage graph: ``Node("dataset", digest)`` or by keyword.

    Positional arguments are allowed (unlike other public dataclasses): a node is a
    plain two-field value, and ``(kind, id)`` reads naturally.

    Args:
        kind: one of :data:`NODE_KINDS`, e.g. ``"model_version"``.
        id: a resource path (``"credit/models/scorer/3"``) or an opaque id (a sha256
            digest, a run id).

    >>> Node(kind="model_version", id="credit/models/scorer/3")
    Node(kind='model_version', id='credit/models/scorer/3')
    """

    kind: str
    id: str

    def __post_init__(self) -> None:
        check_kind(self.kind)
        check_node_id(self.id)

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"

    @property
    def is_path(self) -> bool:
        """Whether the id is a resource path (else an opaque id such as a digest)."""
        return "/" in self.id


def check_kind(kind: object) -> str:
    """Return ``kind`` if it is a known node kind, else raise ValidationError."""
    if not isinstance(kind, str) or kind not in NODE_KINDS:
        raise ValidationError(
            f"{kind!r} is not a lineage node kind.",
            hint=did_you_mean(str(kind), NODE_KINDS) or "known: " + ", ".join(sorted(NODE_KINDS)),
        )
    return kind


def check_node_id(node_id: object) -> str:
    """Return ``node_id`` if it is a resource path or an opaque id, else raise."""
    if not isinstance(node_id, str):
        raise ValidationError(f"A lineage node id must be a string, got {type(node_id).__name__}.")
    if "/" in node_id:
        if node_id.count("/") < 2:
            raise ValidationError(
                f"The lineage node id {node_id!r} is neither a digest nor a full resource path.",
                hint="use '<project>/<kind>/<name>[/...]' or an opaque id such as a digest",
            )
        return check_resource(node_id)
    if _OPAQUE.fullmatch(node_id) is None:
        raise ValidationError(
            f"The lineage node id {node_id[:80]!r} is not valid.",
            hint="an opaque id uses lower-case letters, digits, '.', '_', ':' or '-' "
            "(1 to 128 characters); a resource path looks like 'project/kind/name'",
        )
    return node_id


def check_relation(relation: object) -> str:
    """Return ``relation`` if it matches ``[a-z_]{1,32}``, else raise ValidationError."""
    if not isinstance(relation, str) or _RELATION.fullmatch(relation) is None:
        raise ValidationError(
            f"The lineage relation {relation!r} is not valid.",
            hint="use 1 to 32 lower-case letters or '_', e.g. 'trained_on'",
        )
    return relation


def insert_edge(session: Session, conn: sa.Connection, src: Node, dst: Node, relation: str) -> bool:
    """Insert an edge inside the caller's write transaction, without a permission check.

    For parts that authorized the operation producing the edge themselves; the caller
    audits it. Return whether the edge is new (an existing edge is left as it is).
    """
    check_relation(relation)
    if len(src.id) > MAX_PATH or len(dst.id) > MAX_PATH:  # pragma: no cover - Node checks
        raise ValidationError("A lineage node id is too long.")
    key = {
        "src_kind": src.kind,
        "src_id": src.id,
        "dst_kind": dst.kind,
        "dst_id": dst.id,
        "relation": relation,
    }
    # Catalog writes are serialized (SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory
    # lock), so no other writer can add the same edge between this look and the insert.
    if conn.execute(_EXISTS, key).first() is not None:
        return False
    conn.execute(
        _INSERT,
        {
            **key,
            "run_id": session.run_id,
            "created_at": now_utc(),
            "created_by": session.principal.id,
        },
    )
    return True


def insert_new_edges(
    session: Session, conn: sa.Connection, edges: Iterable[tuple[Node, Node, str]]
) -> int:
    """Insert edges that cannot exist yet — each touches a node the caller's operation
    made in this transaction (a new execution's steps, say) — in one statement.

    Duplicates among ``edges`` are inserted once. Return how many were inserted.
    """
    now = now_utc()
    rows: dict[tuple[str, ...], dict[str, Any]] = {}
    for src, dst, relation in edges:
        check_relation(relation)
        key = (src.kind, src.id, dst.kind, dst.id, relation)
        rows[key] = {
            "src_kind": src.kind,
            "src_id": src.id,
            "dst_kind": dst.kind,
            "dst_id": dst.id,
            "relation": relation,
            "run_id": session.run_id,
            "created_at": now,
            "created_by": session.principal.id,
        }
    if rows:
        conn.execute(_INSERT, list(rows.values()))
    return len(rows)


_EXISTS = sa.select(lineage_edges.c.id).where(
    *(
        lineage_edges.c[k] == sa.bindparam(k)
        for k in ("src_kind", "src_id", "dst_kind", "dst_id", "relation")
    )
)
_INSERT = sa.insert(lineage_edges)


def delete_edges_under(conn: sa.Connection, kind: str, prefix: str) -> int:
    """Delete the edges touching a ``kind`` node whose id is ``prefix`` or below it."""
    total = 0
    for side in ("src", "dst"):
        kcol, icol = lineage_edges.c[f"{side}_kind"], lineage_edges.c[f"{side}_id"]
        result = conn.execute(
            sa.delete(lineage_edges).where(
                kcol == kind, sa.or_(icol == prefix, icol.startswith(prefix + "/", autoescape=True))
            )
        )
        total += int(result.rowcount or 0)
    return total


@dataclass(frozen=True)
class _Edge:
    src: Node
    dst: Node
    relation: str


def _edge(row: Any) -> _Edge:
    return _Edge(
        Node(kind=row.src_kind, id=row.src_id),
        Node(kind=row.dst_kind, id=row.dst_id),
        row.relation,
    )


class Lineage:
    """Lineage edges under the session's grants (``session.lineage``)."""

    def __init__(self, session: Session) -> None:
        self._s = session

    # -- writing -----------------------------------------------------------------------
    def add(self, src: Node, dst: Node, relation: str) -> bool:
        """Record that ``dst`` was made from, by or with ``src`` (idempotent).

        Args:
            src: the upstream node.
            dst: the downstream node.
            relation: a name for the link, ``[a-z_]{1,32}``, e.g. ``"trained_on"``.

        Returns:
            Whether the edge is new.

        Raises:
            ValidationError: a bad kind, id or relation.
            PermissionDenied: an end is not visible to you, or you lack the write action
                of the destination's kind on it (see the module's documentation).
        """
        for node in (src, dst):
            if not isinstance(node, Node):
                raise ValidationError(
                    f"Lineage ends must be Node objects, got {type(node).__name__}.",
                    hint="e.g. Node(kind='dataset', id=digest)",
                )
        check_relation(relation)
        with self._s.catalog.read() as conn:
            folders = _folders(conn, [src, dst])
        self._require(src, NODE_KINDS[src.kind][0], folders, also_read=True)
        self._require(dst, NODE_KINDS[dst.kind][0], folders, also_read=True)
        resource = self._require(dst, NODE_KINDS[dst.kind][1], folders, also_read=False)
        with self._s.catalog.write() as conn:
            new = insert_edge(self._s, conn, src, dst, relation)
            if new:
                self._s.record(
                    conn,
                    action="lineage:add",
                    resource=resource,
                    detail={"src": str(src), "dst": str(dst), "relation": relation},
                )
        return new

    def _require(
        self, node: Node, action: str, folders: Mapping[str, list[str]], *, also_read: bool
    ) -> str:
        """Require ``action`` on the resource governing ``node``; return that resource."""
        candidates = self._governing(node, folders) or [self._s.project]
        for resource in candidates:
            if self._s.can(action, resource) or (
                also_read and not node.is_path and self._s.can("artifact:read", resource)
            ):
                return resource
        self._s.require(action, candidates[0])  # audits the denial and raises
        return candidates[0]  # pragma: no cover

    @staticmethod
    def _governing(node: Node, folders: Mapping[str, list[str]]) -> list[str]:
        if node.is_path:
            return [node.id]
        return list(folders.get(node.id, ()))

    # -- queries -------------------------------------------------------------------------
    def upstream(self, node: Node, *, depth: int | None = None) -> nx.DiGraph:
        """Return ``node`` and what it was made from, ``depth`` hops back at most.

        Nodes you may not describe are left out, with whatever lies only behind them.
        Cycles are tolerated. Nodes are :class:`Node` objects; each edge carries its
        ``relations`` (a sorted tuple).
        """
        return self._walk(node, "up", depth)

    def downstream(self, node: Node, *, depth: int | None = None) -> nx.DiGraph:
        """Return ``node`` and what was made from it, ``depth`` hops on at most."""
        return self._walk(node, "down", depth)

    def graph(self) -> nx.DiGraph:
        """Return every edge whose two ends you may see."""
        with self._s.catalog.read() as conn:
            edges = [_edge(r) for r in conn.execute(sa.select(lineage_edges))]
            nodes = {e.src for e in edges} | {e.dst for e in edges}
            visible = self._visible(conn, nodes, edges)
        return _to_graph((e for e in edges if e.src in visible and e.dst in visible), [])

    def _walk(self, root: Node, direction: Literal["up", "down"], depth: int | None) -> nx.DiGraph:
        if not isinstance(root, Node):
            raise ValidationError(f"Expected a Node, got {type(root).__name__}.")
        if depth is not None and (isinstance(depth, bool) or depth < 0):
            raise ValidationError(f"depth must be a non-negative integer or None, not {depth!r}.")
        with self._s.catalog.read() as conn:
            folders = _folders(conn, [root])
        if self._governing(root, folders):
            self._require(root, NODE_KINDS[root.kind][0], folders, also_read=True)
        kept: list[_Edge] = []
        seen, frontier, hops = {root}, {root}, 0
        with self._s.catalog.read() as conn:
            while frontier and (depth is None or hops < depth):
                edges = _edges_at(conn, frontier, direction)
                far = {(e.src if direction == "up" else e.dst) for e in edges}
                visible = self._visible(conn, far)
                frontier = set()
                for e in edges:
                    other = e.src if direction == "up" else e.dst
                    if other in visible:
                        kept.append(e)
                        if other not in seen:
                            seen.add(other)
                            frontier.add(other)
                hops += 1
        return _to_graph(kept, [root])

    def _visible(
        self, conn: sa.Connection, nodes: Iterable[Node], edges: Iterable[_Edge] | None = None
    ) -> set[Node]:
        """Return the nodes among ``nodes`` the caller may see (see the module's docs).

        ``edges`` must hold every edge touching the opaque, ungoverned nodes among
        ``nodes``; when None they are read from the catalog.
        """
        nodes = set(nodes)
        folders = _folders(conn, nodes)
        ungoverned = {n for n in nodes if not self._governing(n, folders)}
        visible = {n for n in nodes - ungoverned if self._sees(n, self._governing(n, folders))}
        if not ungoverned:
            return visible
        if edges is None:
            edges = _edges_at(conn, ungoverned, "up") + _edges_at(conn, ungoverned, "down")
        links = [
            (me, other)
            for e in edges
            for me, other in ((e.src, e.dst), (e.dst, e.src))
            if me in ungoverned
        ]
        folders.update(_folders(conn, {o for _, o in links} - nodes))
        judged: dict[Node, bool] = {}
        for me, other in links:
            if me in visible:
                continue
            if other not in judged:
                resources = self._governing(other, folders)
                judged[other] = bool(resources) and self._sees(other, resources)
            if judged[other]:
                visible.add(me)
        return visible

    def _sees(self, node: Node, resources: Iterable[str]) -> bool:
        action = NODE_KINDS[node.kind][0]
        return any(
            self._s.can(action, r) or (not node.is_path and self._s.can("artifact:read", r))
            for r in resources
        )


def _folders(conn: sa.Connection, nodes: Iterable[Node]) -> dict[str, list[str]]:
    """Map each digest among the opaque node ids to the folders holding it."""
    digests = sorted({n.id for n in nodes if not n.is_path and _DIGEST.fullmatch(n.id)})
    found: dict[str, list[str]] = {}
    for i in range(0, len(digests), _BATCH):
        rows = conn.execute(
            sa.select(artifact_entries.c.digest, artifact_entries.c.folder)
            .where(artifact_entries.c.digest.in_(digests[i : i + _BATCH]))
            .order_by(artifact_entries.c.folder)
        )
        for r in rows:
            found.setdefault(r.digest, []).append(r.folder)
    return found


def _edges_at(
    conn: sa.Connection, nodes: Iterable[Node], direction: Literal["up", "down"]
) -> list[_Edge]:
    """Return the edges ending at (``up``) or starting from (``down``) any of ``nodes``."""
    side = "dst" if direction == "up" else "src"
    kcol, icol = lineage_edges.c[f"{side}_kind"], lineage_edges.c[f"{side}_id"]
    wanted = set(nodes)
    ids = sorted({n.id for n in wanted})
    kinds = sorted({n.kind for n in wanted})
    out: list[_Edge] = []
    for i in range(0, len(ids), _BATCH):
        rows = conn.execute(
            sa.select(lineage_edges).where(kcol.in_(kinds), icol.in_(ids[i : i + _BATCH]))
        )
        for r in rows:
            e = _edge(r)
            if (e.dst if direction == "up" else e.src) in wanted:
                out.append(e)
    return out


def _to_graph(edges: Iterable[_Edge], roots: Iterable[Node]) -> nx.DiGraph:
    import networkx as nx

    graph = nx.DiGraph()
    for node in roots:
        graph.add_node(node, kind=node.kind, id=node.id)
    for e in edges:
        for node in (e.src, e.dst):
            if node not in graph:
                graph.add_node(node, kind=node.kind, id=node.id)
        if graph.has_edge(e.src, e.dst):
            rels = graph.edges[e.src, e.dst]["relations"]
            graph.edges[e.src, e.dst]["relations"] = tuple(sorted({*rels, e.relation}))
        else:
            graph.add_edge(e.src, e.dst, relations=(e.relation,))
    return graph


def format_tree(
    graph: nx.DiGraph, root: Node, *, direction: Literal["auto", "up", "down"] = "auto"
) -> str:
    """Render ``graph`` as a text tree from ``root`` (what ``trivet lineage show`` prints).

    Args:
        graph: a graph from :meth:`Lineage.upstream`, :meth:`Lineage.downstream` or
            :meth:`Lineage.graph`.
        root: the node to start from.
        direction: ``"up"`` lists what each node was made from, ``"down"`` what was made
            from it; ``"auto"`` picks ``"up"`` when ``root`` has predecessors.

    A node met a second time (a diamond or a cycle) is printed with ``(↑ shown above)``
    and not expanded again.

    >>> import networkx as nx
    >>> g = nx.DiGraph()
    >>> a, m = Node(kind="dataset", id="abc"), Node(kind="model_version", id="p/models/m/1")
    >>> g.add_edge(a, m, relations=("trained_on",))
    >>> print(format_tree(g, m))
    model_version p/models/m/1
    └── trained_on ← dataset abc
    """
    if root not in graph:
        return f"{root.kind} {root.id}"
    if direction == "auto":
        direction = "up" if graph.in_degree(root) else "down"
    arrow = "←" if direction == "up" else "→"
    lines = [f"{root.kind} {root.id}"]
    shown = {root}

    def neighbours(node: Node) -> list[Node]:
        found = graph.predecessors(node) if direction == "up" else graph.successors(node)
        return sorted(found)

    def relations(a: Node, b: Node) -> str:
        src, dst = (b, a) if direction == "up" else (a, b)
        return ", ".join(graph.edges[src, dst].get("relations", ()))

    def walk(node: Node, prefix: str) -> None:
        children = neighbours(node)
        for i, child in enumerate(children):
            last = i == len(children) - 1
            branch, indent = ("└── ", "    ") if last else ("├── ", "│   ")
            again = child in shown
            note = "  (↑ shown above)" if again else ""
            lines.append(
                f"{prefix}{branch}{relations(node, child)} {arrow} {child.kind} {child.id}{note}"
            )
            if not again:
                shown.add(child)
                walk(child, prefix + indent)

    walk(root, "")
    return "\n".join(lines)
