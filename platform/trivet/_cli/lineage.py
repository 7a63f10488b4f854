"""`trivet lineage`: what an entity was made from, and what was made from it."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from trivet._cli.context import session
from trivet._cli.output import JSON_OPTION, emit_json

app = typer.Typer(
    help="Show lineage between feature groups, data, runs and models.", no_args_is_help=True
)


@app.command("show")
def show(
    kind: Annotated[str, typer.Argument(help="Node kind, e.g. model_version, artifact, dataset.")],
    node_id: Annotated[str, typer.Argument(help="Resource path or digest, e.g. p/models/m/3.")],
    downstream: Annotated[
        bool, typer.Option("--downstream", help="What was made from it (default: upstream).")
    ] = False,
    depth: Annotated[int | None, typer.Option(help="How many hops (default: all).")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Print the lineage tree of one node (only what you may describe)."""
    from trivet.platform.lineage import Node, format_tree

    lineage = session().lineage
    node = Node(kind=kind, id=node_id)
    graph = (lineage.downstream if downstream else lineage.upstream)(node, depth=depth)
    if as_json:
        emit_json(
            {
                "root": {"kind": node.kind, "id": node.id},
                "edges": [
                    {
                        "src": {"kind": a.kind, "id": a.id},
                        "dst": {"kind": b.kind, "id": b.id},
                        "relations": list(data.get("relations", ())),
                    }
                    for a, b, data in sorted(graph.edges(data=True))
                ],
            }
        )
        return
    direction: Literal["up", "down"] = "down" if downstream else "up"
    typer.echo(format_tree(graph, node, direction=direction))
