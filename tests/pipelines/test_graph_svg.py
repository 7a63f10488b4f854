"""The notebook view: pipelines and executions drawn as self-contained SVG (nodes,
edges, layers, status colours), with every name and message escaped."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trivet
from trivet.errors import ValidationError
from trivet.pipelines import Pipelines, fail, pipeline, step, when
from trivet.pipelines._graph import render

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"
    return root


def nodes(root: ET.Element) -> dict[str, ET.Element]:
    return {
        g.attrib["data-step"]: g
        for g in root.iter(f"{SVG}g")
        if "node" in g.attrib.get("class", "").split()
    }


def edges(root: ET.Element) -> dict[tuple[str, str], ET.Element]:
    return {
        (g.attrib["data-from"], g.attrib["data-to"]): g
        for g in root.iter(f"{SVG}g")
        if "edge" in g.attrib.get("class", "").split()
    }


def classes(element: ET.Element) -> set[str]:
    return set(element.attrib["class"].split())


def box(element: ET.Element) -> tuple[float, float, float, float]:
    rect = element.find(f"{SVG}rect")
    assert rect is not None
    return tuple(float(rect.attrib[k]) for k in ("x", "y", "width", "height"))  # type: ignore[return-value]


def assert_self_contained(svg: str) -> None:
    lowered = svg.lower()
    for banned in ("<script", "href", "url(", "@import", "<style", "<foreignobject", "on"):
        if banned == "on":  # no event handler attributes (onload=, onclick=, ...)
            assert " onload=" not in lowered and " onclick=" not in lowered
            continue
        assert banned not in lowered, banned
    assert lowered.count("http") == 1  # only the xmlns


@step
def source(n: int) -> dict[str, Any]:
    return {"score": n / 10, "label": "<b>bold</b>"}


@step
def good(x: dict[str, Any]) -> int:
    return 1


@step
def report(a: Any, b: Any) -> None:
    return None


@pipeline
def gated(n: int = 9, bar: float = 0.5) -> None:
    s = source(n)
    a = good(s)
    b = good(s)
    report(a, b)
    when(
        s["score"] >= bar,
        then=lambda: good(s),
        otherwise=lambda: fail('score too low: <script>alert("x")</script> & {v}', v=s["score"]),
    )


def test_the_svg_has_every_step_and_edge_in_layers() -> None:
    svg = gated.graph(format="svg")
    assert_self_contained(svg)
    root = parse(svg)
    found = nodes(root)
    assert sorted(found) == ["fail", "good", "good_2", "good_3", "report", "source"]
    assert set(edges(root)) == {
        ("source", "good"),
        ("source", "good_2"),
        ("good", "report"),
        ("good_2", "report"),
        ("source", "good_3"),
        ("source", "fail"),
    }
    conditional = {k for k, g in edges(root).items() if "conditional" in classes(g)}
    assert conditional == {("source", "good_3"), ("source", "fail")}
    assert classes(found["fail"]) == {"node", "fail"}
    assert classes(found["good"]) == {"node", "step"}  # no status without an execution
    # layers: source at the top, its readers one layer down, report below them
    y = {name: box(g)[1] for name, g in found.items()}
    assert y["source"] < y["good"] == y["good_2"] == y["good_3"] == y["fail"] < y["report"]
    # escaping: the fail message is text, not markup
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    tip = found["fail"].find(f"{SVG}title")
    assert tip is not None and 'score too low: <script>alert("x")</script> & {v}' in (
        tip.text or ""
    )


def test_an_execution_shows_each_step_by_status(admin: trivet.Session) -> None:
    pl = Pipelines(admin)
    low = pl.run(gated, params={"n": 2})  # score 0.2 < 0.5: the fail branch
    assert not low.succeeded
    html = low._repr_html_()
    assert html.startswith('<div class="trivet-execution">') and "<svg" in html
    assert low.id in html and "failed" in html
    root = parse(html[html.index("<svg") : html.index("</svg>") + len("</svg>")])
    status = {name: classes(g) - {"node", "step", "fail"} for name, g in nodes(root).items()}
    assert status == {
        "source": {"status-succeeded"},
        "good": {"status-succeeded"},
        "good_2": {"status-succeeded"},
        "report": {"status-succeeded"},
        "good_3": {"status-skipped"},
        "fail": {"status-failed"},
    }
    legend = root.find(f"{SVG}g[@class='legend']")
    assert legend is not None
    assert {t.text for t in legend.iter(f"{SVG}text")} == {"failed", "skipped", "succeeded"}

    high = pl.run(gated, params={"n": 2, "bar": 0.1})  # same source: cached
    read_back = pl.get_execution(high.id)  # from the catalog, with its definition
    root = parse(pl.graph("gated", format="svg", execution=high.id))
    shown = read_back._repr_html_()
    for svg_root in (root, parse(shown[shown.index("<svg") : shown.index("</svg>") + 6])):
        found = nodes(svg_root)
        assert classes(found["source"]) == {"node", "step", "status-succeeded", "cached"}
        assert "status-succeeded" in classes(found["good_3"])
        assert classes(found["fail"]) == {"node", "fail", "status-skipped"}
        status_text = found["source"].find(f"{SVG}text[@class='status']")
        assert status_text is not None and status_text.text == "succeeded · cached"


def test_a_pipeline_shows_itself_in_jupyter() -> None:
    html = gated._repr_html_()
    assert html.startswith('<div class="trivet-pipeline"><p><b>pipeline gated</b> · 6 steps')
    assert "n: int = 9" in html and "bar: float = 0.5" in html
    assert len(nodes(parse(html[html.index("<svg") : html.index("</svg>") + 6]))) == 6
    with pytest.raises(ValidationError, match="use text, mermaid or svg"):
        gated.graph(format="png")  # type: ignore[arg-type]


@st.composite
def dags(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 14))
    names = [f"s{i}" for i in range(count)]
    steps = []
    for i, name in enumerate(names):
        deps = sorted(draw(st.sets(st.sampled_from(names[:i]), max_size=3))) if i else []
        steps.append(
            {"name": name, "kind": "step", "depends_on": deps, "when": [], "function": "m:f"}
        )
    return {"name": "random", "steps": steps}


@settings(max_examples=60, deadline=None)
@given(dags())
def test_layout_invariants_on_random_dags(definition: dict[str, Any]) -> None:
    root = parse(render(definition, format="svg"))
    found = nodes(root)
    assert set(found) == {s["name"] for s in definition["steps"]}
    assert set(edges(root)) == {
        (d, s["name"]) for s in definition["steps"] for d in s["depends_on"]
    }
    width, height = float(root.attrib["width"]), float(root.attrib["height"])
    boxes = {name: box(g) for name, g in found.items()}
    for x, y, w, h in boxes.values():
        assert x >= 0 and x + w <= width and y >= 0 and y + h <= height
    for s in definition["steps"]:  # every edge points down
        for dep in s["depends_on"]:
            assert boxes[dep][1] + boxes[dep][3] < boxes[s["name"]][1]
    by_row: dict[float, list[tuple[float, float]]] = {}
    for x, y, w, _ in boxes.values():
        by_row.setdefault(y, []).append((x, x + w))
    for row in by_row.values():  # boxes of a layer do not overlap
        row.sort()
        assert all(a[1] < b[0] for a, b in itertools.pairwise(row))
