"""The run token's scope: an execution's folder, and what its pipeline declares.

A run may

* read and write its own folder ``<project>/runs/<execution id>``;
* read the outputs of the project's other runs (``artifact:read`` on
  ``<project>/runs/*``: the cache reuses them);
* describe anything in the project (the viewer's actions: ``feature:describe``,
  ``model:describe``, ``pipeline:describe``, ``clarify:read_report``), and compute
  with clarify (``clarify:run`` on ``<project>/reports``, which stores nothing);
* do to each path its steps (or the pipeline) declare what the declaration needs —
  :data:`READS` for a read, those and :data:`WRITES` for a write — and nothing else.

It is a ceiling (intersected with the invoker's own token's scope); the run-as
principal's grants still decide.
"""

from __future__ import annotations

from collections.abc import Mapping

from trivet.pipelines.step import Uses
from trivet.platform.permissions import BUILTIN_ROLES, TokenScope

__all__ = ["ARTIFACT_READS", "ARTIFACT_WRITES", "READS", "WRITES", "run_scope"]

ARTIFACT_READS = frozenset({"artifact:read"})
ARTIFACT_WRITES = frozenset({"artifact:write"})

READS: Mapping[str, frozenset[str]] = {
    "feature_groups": frozenset(
        {"feature:describe", "feature:read_online", "feature:read_offline"}
    ),
    "models": frozenset({"model:describe", "model:read", "model:predict"}) | ARTIFACT_READS,
    "reports": frozenset({"clarify:read_report"}) | ARTIFACT_READS,
}
"""The actions a declared read allows, by kind; any other kind is a folder of artifacts
(``artifact:read``)."""

WRITES: Mapping[str, frozenset[str]] = {
    # creating a declared group is writing it; deleting it is not
    "feature_groups": frozenset({"feature:write", "feature:create"}),
    # registering stores the model in the group's folder; approving is never a run's
    "models": frozenset({"model:register"}) | ARTIFACT_WRITES,
    "reports": frozenset({"clarify:run"}) | ARTIFACT_WRITES,
}
"""The actions a declared write adds to its read's, by kind (else ``artifact:write``)."""

HINT = (
    'declare it on the step that touches it: @step({access}=["{path}"]), or on the '
    'pipeline: @pipeline({access}=["{path}"])'
)


def _pattern(project: str, path: str) -> str:
    return f"{project}/{path}" if path.endswith("/*") else f"{project}/{path}/*"


def _kind(path: str) -> str:
    return path.split("/", 1)[0]


def run_scope(
    *,
    project: str,
    execution_id: str,
    pipeline: str,
    uses: Uses,
    ceiling: TokenScope | None,
) -> TokenScope:
    """Return the scope of an execution's run token.

    Args:
        project: the execution's project.
        execution_id: its id; its folder is ``<project>/runs/<execution_id>``.
        pipeline: the pipeline's name (for the scope's description).
        uses: what the pipeline declares (:meth:`Pipeline.uses`).
        ceiling: the invoker's token's scope, if any: the run never exceeds it.

    Returns:
        A scope with an action set per pattern (see the module's documentation).
    """
    folder = f"{project}/runs/{execution_id}"
    rules: dict[str, set[str]] = {
        f"{folder}/*": {"artifact:read", "artifact:write"},
        f"{project}/runs/*": {"artifact:read"},
        f"{project}/*": set(BUILTIN_ROLES["viewer"]),
        f"{project}/reports": {"clarify:run"},
    }
    for path in uses.reads:
        rules.setdefault(_pattern(project, path), set()).update(
            READS.get(_kind(path), ARTIFACT_READS)
        )
    for path in uses.writes:
        kind = _kind(path)
        rules.setdefault(_pattern(project, path), set()).update(
            READS.get(kind, ARTIFACT_READS) | WRITES.get(kind, ARTIFACT_WRITES)
        )
    declared = [
        f"{verb} {', '.join(paths)}"
        for verb, paths in (("writes", uses.writes), ("reads", uses.reads))
        if paths
    ]
    label = (
        f"the run token of execution {execution_id} covers its folder {folder} and what "
        f"pipeline {pipeline!r} declares: {'; '.join(declared) or 'nothing'}"
    )
    if ceiling is not None:
        label += ", within the invoker's token's scope"
    scope = TokenScope.of_rules(
        {pattern: sorted(actions) for pattern, actions in rules.items()}, label=label, hint=HINT
    )
    return scope.intersect(ceiling)
