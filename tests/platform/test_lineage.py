"""Lineage: edges between catalog entities, graph queries, visibility filtering."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import trivet
from trivet.errors import PermissionDenied, ValidationError
from trivet.platform import audit
from trivet.platform.catalog import now_utc
from trivet.platform.catalog.schema import artifact_entries, artifacts, lineage_edges
from trivet.platform.lineage import NODE_KINDS, Node, format_tree
from trivet.platform.settings import Settings

DATA = "a" * 64
REPORT = "b" * 64
LOOSE = "c" * 64  # a digest no artifact-store folder holds

FG = Node(kind="feature_group", id="default/feature_groups/credit")
DS = Node(kind="dataset", id=DATA)
RUN = Node(kind="run", id="run-1")
MV = Node(kind="model_version", id="default/models/m/1")
REP = Node(kind="report", id=REPORT)


def put_artifact(session: trivet.Session, digest: str, folder: str) -> None:
    with session.catalog.write() as conn:
        conn.execute(
            sa.insert(artifacts).values(
                digest=digest,
                kind="blob",
                size=1,
                media_type="application/octet-stream",
                meta={},
                created_at=now_utc(),
                created_by=session.principal.id,
            )
        )
        conn.execute(
            sa.insert(artifact_entries).values(
                folder=folder, digest=digest, label="", created_at=now_utc()
            )
        )


def user(
    admin: trivet.Session, workspace: Settings, name: str, *grants: tuple[str, str]
) -> trivet.Session:
    admin.identity.create_user(name)
    for privilege, pattern in grants:
        admin.access.grant(name, privilege, pattern)
    tok = admin.identity.create_token(name)
    return trivet.connect(workspace.workspace, token=tok.secret)


@pytest.fixture
def chain(admin: trivet.Session) -> trivet.Session:
    """feature group → dataset → model version ← report (← dataset), ← run."""
    put_artifact(admin, DATA, "default/datasets/train")
    put_artifact(admin, REPORT, "default/reports/credit")
    lin = admin.lineage
    assert lin.add(FG, DS, "derived_from")
    assert lin.add(DS, MV, "trained_on")
    assert lin.add(RUN, MV, "produced")
    assert lin.add(REP, MV, "gated")
    assert lin.add(DS, REP, "evaluated_on")
    return admin


def names(graph: object) -> set[str]:
    return {str(n) for n in graph}  # type: ignore[attr-defined]


# -- nodes and edges -----------------------------------------------------------------------
def test_node_validation() -> None:
    assert str(Node(kind="model_version", id="p/models/m/3")) == "model_version:p/models/m/3"
    assert Node(kind="artifact", id=DATA).is_path is False
    assert Node("run", "run-1") == RUN
    with pytest.raises(ValidationError, match="did you mean 'model_version'"):
        Node(kind="model_versions", id="p/models/m/3")
    for bad in ("", "Upper", "a/b", "p/models/../x", "p//m", "p/models/m/", "x y", "a#b", 3):
        with pytest.raises(ValidationError):
            Node(kind="dataset", id=bad)  # type: ignore[arg-type]
    assert set(NODE_KINDS) >= {
        "feature_group",
        "dataset",
        "execution",
        "run",
        "artifact",
        "report",
        "model_version",
        "pipeline",
    }


def test_add_is_idempotent_validated_and_audited(
    admin: trivet.Session, catalog_backend: str
) -> None:
    lin = admin.lineage
    assert lin.add(RUN, MV, "produced") is True
    assert lin.add(RUN, MV, "produced") is False
    assert lin.add(RUN, MV, "logged") is True  # another relation is another edge
    for bad in ("Trained", "x" * 33, "trained-on", "", "r2"):
        with pytest.raises(ValidationError, match="relation"):
            lin.add(RUN, MV, bad)
    with pytest.raises(ValidationError, match="Node objects"):
        lin.add("run-1", MV, "produced")  # type: ignore[arg-type]
    with admin.catalog.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(lineage_edges)).scalar() == 2
    added = [e for e in audit.entries(admin.catalog) if e.action == "lineage:add"]
    assert [(e.resource, e.detail["relation"]) for e in added] == [
        ("default/models/m/1", "produced"),
        ("default/models/m/1", "logged"),
    ]
    graph = lin.upstream(MV)
    assert graph.edges[RUN, MV]["relations"] == ("logged", "produced")


# -- queries -------------------------------------------------------------------------------
def test_upstream_and_downstream_with_depth(chain: trivet.Session, catalog_backend: str) -> None:
    lin = chain.lineage
    assert names(lin.upstream(MV, depth=0)) == {str(MV)}
    assert set(lin.upstream(MV, depth=1)) == {MV, DS, RUN, REP}
    full = lin.upstream(MV)
    assert set(full) == {MV, DS, RUN, REP, FG}
    assert set(full.edges) == {(FG, DS), (DS, MV), (RUN, MV), (REP, MV), (DS, REP)}
    assert set(lin.upstream(MV, depth=2)) == set(full)
    assert set(lin.downstream(FG, depth=1)) == {FG, DS}
    assert set(lin.downstream(FG)) == {FG, DS, REP, MV}
    assert set(lin.downstream(MV)) == {MV}
    assert set(lin.graph().edges) == set(full.edges)
    with pytest.raises(ValidationError, match="depth"):
        lin.upstream(MV, depth=-1)


def test_cycles_are_tolerated(admin: trivet.Session, catalog_backend: str) -> None:
    a, b, c = (Node(kind="pipeline", id=f"default/pipelines/{x}") for x in "abc")
    for src, dst in ((a, b), (b, c), (c, a)):
        admin.lineage.add(src, dst, "feeds")
    assert set(admin.lineage.upstream(a)) == {a, b, c}
    assert set(admin.lineage.downstream(a, depth=1)) == {a, b}
    text = format_tree(admin.lineage.downstream(a), a, direction="down")
    assert text.splitlines() == [
        "pipeline default/pipelines/a",
        "└── feeds → pipeline default/pipelines/b",
        "    └── feeds → pipeline default/pipelines/c",
        "        └── feeds → pipeline default/pipelines/a  (↑ shown above)",
    ]


def test_format_tree(chain: trivet.Session) -> None:
    text = format_tree(chain.lineage.upstream(MV), MV)
    assert text == "\n".join(
        [
            "model_version default/models/m/1",
            f"├── trained_on ← dataset {DATA}",
            "│   └── derived_from ← feature_group default/feature_groups/credit",
            f"├── gated ← report {REPORT}",
            f"│   └── evaluated_on ← dataset {DATA}  (↑ shown above)",
            "└── produced ← run run-1",
        ]
    )
    assert format_tree(chain.lineage.downstream(FG, depth=1), FG, direction="down") == (
        f"feature_group default/feature_groups/credit\n└── derived_from → dataset {DATA}"
    )
    assert format_tree(chain.lineage.graph(), Node(kind="run", id="nowhere")) == "run nowhere"


# -- visibility --------------------------------------------------------------------------
def test_queries_show_only_what_the_caller_may_describe(
    chain: trivet.Session, workspace: Settings, catalog_backend: str
) -> None:
    admin = chain
    carol = user(admin, workspace, "carol", ("viewer", "default/models/*"))
    # the run id is opaque and ungoverned: shown because the model version is shown
    assert set(carol.lineage.upstream(MV)) == {MV, RUN}
    assert set(carol.lineage.graph().edges) == {(RUN, MV)}
    with pytest.raises(PermissionDenied, match="feature:describe"):
        carol.lineage.downstream(FG)
    # a report digest is shown through the folder that holds it
    admin.access.grant("carol", "clarify:read_report", "default/reports/*")
    assert set(carol.lineage.upstream(MV)) == {MV, RUN, REP}
    # the feature group is describable, but lies only behind the hidden dataset
    admin.access.grant("carol", "feature:describe", "default/feature_groups/*")
    assert set(carol.lineage.upstream(MV)) == {MV, RUN, REP}
    assert FG not in carol.lineage.graph()
    admin.access.grant("carol", "artifact:read", "default/datasets/*")
    assert set(carol.lineage.upstream(MV)) == {MV, RUN, REP, DS, FG}
    # an explicit deny hides the model version again, and the run with it
    admin.access.grant("carol", "model:describe", "default/models/m/1", deny=True)
    with pytest.raises(PermissionDenied):
        carol.lineage.upstream(MV)
    assert set(carol.lineage.downstream(FG)) == {FG, DS, REP}
    assert RUN not in carol.lineage.graph()


def test_opaque_nodes(admin: trivet.Session, workspace: Settings) -> None:
    loose = Node(kind="artifact", id=LOOSE)
    admin.lineage.add(loose, MV, "stored_as")
    stranger = Node(kind="run", id="never-linked")
    assert set(admin.lineage.upstream(stranger)) == {stranger}
    eve = user(admin, workspace, "eve")
    assert set(eve.lineage.upstream(stranger)) == {stranger}
    assert set(eve.lineage.graph()) == set()
    # a digest no folder holds is shown with a neighbour the caller may see
    assert set(eve.lineage.downstream(loose)) == {loose}
    admin.access.grant("eve", "model:describe", "default/models/*")
    assert set(eve.lineage.downstream(loose)) == {loose, MV}
    assert set(eve.lineage.graph()) == {loose, MV}


def test_add_needs_rights_on_both_ends(
    admin: trivet.Session, workspace: Settings, catalog_backend: str
) -> None:
    put_artifact(admin, DATA, "default/datasets/train")
    bob = user(admin, workspace, "bob", ("data_scientist", "default/*"))
    assert bob.lineage.add(DS, MV, "trained_on")
    assert bob.lineage.add(RUN, MV, "produced")
    vera = user(admin, workspace, "vera", ("viewer", "default/*"))
    with pytest.raises(PermissionDenied, match="model:register"):
        vera.lineage.add(RUN, MV, "logged")
    # can write the model version, but cannot see the dataset it would link from
    mia = user(admin, workspace, "mia", ("owner", "default/models/*"))
    with pytest.raises(PermissionDenied, match="artifact:read"):
        mia.lineage.add(DS, MV, "trained_on")
    # writing to a digest needs artifact:write on a folder holding it
    admin.access.grant("vera", "artifact:read", "default/datasets/*")
    with pytest.raises(PermissionDenied, match="artifact:write"):
        vera.lineage.add(FG, DS, "derived_from")
    assert bob.lineage.add(FG, DS, "derived_from")
    denied = [e for e in audit.entries(admin.catalog) if e.outcome == "denied"]
    assert {(e.actor, e.action) for e in denied} >= {
        ("vera", "model:register"),
        ("mia", "artifact:read"),
        ("vera", "artifact:write"),
    }
    assert audit.verify(admin.catalog).ok
