"""Names: principals, resource paths and grant patterns; segment-aware matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trivet.errors import ValidationError
from trivet.platform.names import (
    MAX_PATH,
    RESERVED_ROOTS,
    check_name,
    check_pattern,
    check_resource,
    pattern_covers,
    pattern_includes,
)
from trivet.platform.permissions import pattern_probe_keys, probe_keys

# case 9 of the permission spec, plus more ways to smuggle a separator or escape a folder
BAD_PATHS = [
    "p/../x",
    "p/..",
    "../p",
    "p/.",
    "p//x",
    "p/Models/x",
    "P/models/x",
    "p/models/x/",
    "/p/models/x",
    "p/*/x",
    "p/mod*/x",
    "p/models/x\x00",
    "p/models/x#frag",
    "p\\models\\x",
    "p/models/x?y",
    "p/models/x%2f",
    "p/models/x y",
    "p/models/x\n",
    "p/models/x\t",
    "p/models/~x/..",
    "p/models/x:y",
    "",
    "/",
    "**",
    "*/p",
]
UNICODE = [
    "p/modèles/x",  # non-ASCII letter
    "p/cafe\u0301/x",  # decomposed accent
    "p/caf\u00e9/x",  # composed accent
    "p/\uff50/x",  # fullwidth p
    "p/\u212a/x",  # Kelvin sign, lower()s to 'k'
    "p/x\u200b/y",  # zero-width space
    "p/x\u2044y",  # fraction slash
    "p/x\u2215y",  # division slash
    "p/\u0430/x",  # Cyrillic a
    "p/x\ufe0f/y",  # variation selector
]


@pytest.mark.parametrize("path", BAD_PATHS + UNICODE)
def test_bad_paths_are_rejected(path: str) -> None:
    with pytest.raises(ValidationError):
        check_resource(path)
    with pytest.raises(ValidationError):
        check_pattern(path)
    with pytest.raises(ValidationError):
        check_pattern(path + "/*")


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "...", "Alice", "a/b", "a b", "a\x00", "a#b", "a\\b", "é", "a*", "x" * 65],
)
def test_bad_names_are_rejected(name: str) -> None:
    with pytest.raises(ValidationError) as err:
        check_name(name, what="principal name")
    assert repr(name) in str(err.value) or len(name) > 60


@pytest.mark.parametrize("value", [None, 3, b"p/x", ["p"], {"p": 1}])
def test_non_strings_are_rejected(value: object) -> None:
    for check in (check_name, check_resource, check_pattern):
        with pytest.raises(ValidationError):
            check(value)


def test_hints_propose_a_fix() -> None:
    with pytest.raises(ValidationError) as err:
        check_name("Credit Model")
    assert err.value.hint is not None and "'credit-model'" in err.value.hint
    with pytest.raises(ValidationError) as err:
        check_pattern("p/*/x")
    assert err.value.hint is not None and "path/*" in err.value.hint


def test_length_caps() -> None:
    assert check_name("a" * 64) == "a" * 64
    with pytest.raises(ValidationError):
        check_name("a" * 65)
    with pytest.raises(ValidationError):
        check_resource("p/" + "a" * 65)
    longest = "/".join(["a" * 63] * 7 + ["b" * 64])  # 7 * 63 + 64 + 7 = 512
    assert len(longest) == MAX_PATH and check_resource(longest) == longest
    with pytest.raises(ValidationError, match="512"):
        check_resource(longest + "c")
    assert check_pattern(longest + "/*")  # the pattern's '/*' does not count
    with pytest.raises(ValidationError):
        check_resource("a/" * 300 + "a")


def test_reserved_roots_and_good_names() -> None:
    for root in sorted(RESERVED_ROOTS):
        assert check_resource(root) == root
        assert check_resource(f"{root}/x") == f"{root}/x"
    for good in ("p", "p/feature_groups/credit", "p/models/credit/3", "a.b/c-d/e_f/1.0"):
        assert check_resource(good) == good
        assert check_pattern(good) == good
        assert check_pattern(good + "/*") == good + "/*"
    assert check_pattern("*") == "*"
    with pytest.raises(ValidationError):
        check_resource("*")  # '*' is a pattern, never a resource
    assert check_resource("p/_principals/x") == "p/_principals/x"  # '_' is a segment char


SEGMENT = st.from_regex(r"[a-z0-9._-]{1,64}", fullmatch=True).filter(lambda s: s.strip(".") != "")
PATH = st.lists(SEGMENT, min_size=1, max_size=7).map("/".join).filter(lambda p: len(p) <= MAX_PATH)


@given(path=PATH)
def test_every_valid_path_passes(path: str) -> None:
    assert check_resource(path) == path
    assert check_pattern(path) == path
    assert check_pattern(path + "/*") == path + "/*"
    assert pattern_covers("*", path)
    assert pattern_covers(path, path) and pattern_covers(path + "/*", path)


@given(
    path=PATH,
    position=st.integers(min_value=0, max_value=600),
    bad=st.sampled_from(["/", "//", "..", "*", "\x00", "#", "\\", "A", " ", "é", "/../"]),
)
def test_inserting_a_bad_piece_breaks_a_valid_path(path: str, position: int, bad: str) -> None:
    at = min(position, len(path))
    broken = path[:at] + bad + path[at:]
    try:
        check_resource(broken)
    except ValidationError:
        return
    # only a single '/' or '..' that lands between/inside segments can stay valid
    assert bad in ("/", "..")
    segments = broken.split("/")
    assert all(s and s.strip(".") for s in segments)


@given(pattern=PATH, resource=PATH)
def test_pattern_covers_is_segment_aware(pattern: str, resource: str) -> None:
    p_segments, r_segments = pattern.split("/"), resource.split("/")
    below = r_segments[: len(p_segments)] == p_segments
    assert pattern_covers(pattern + "/*", resource) == below
    assert pattern_covers(pattern, resource) == (pattern == resource)
    # a textual prefix that is not a segment prefix never matches
    if resource.startswith(pattern) and not below:
        assert not pattern_covers(pattern + "/*", resource)
    # the evaluator's probe keys are exactly the patterns that cover a resource
    keys = probe_keys(resource)
    assert (pattern + "/*" in keys) == below
    assert (pattern in keys) == (pattern == resource)
    assert len(keys) == len(r_segments) + 2


@given(pattern=PATH, resource=PATH)
def test_pattern_covers_textual_neighbours(pattern: str, resource: str) -> None:
    neighbour = pattern + "x" + ("/" + resource if resource else "")
    assert not pattern_covers(pattern + "/*", neighbour)
    assert pattern_covers(pattern + "/*", pattern + "/" + resource)


ANY_PATTERN = st.one_of(st.just("*"), PATH, PATH.map(lambda p: p + "/*"))
PROBES = ["p", "p/a", "p/a/b", "p/ab", "q", "p/a/b/c"]


@given(outer=ANY_PATTERN, inner=ANY_PATTERN)
def test_pattern_includes_matches_its_definition(outer: str, inner: str) -> None:
    """``outer`` includes ``inner`` iff it covers every resource ``inner`` matches."""
    node = inner.removesuffix("/*") if inner != "*" else ""
    samples = [r for r in PROBES if pattern_covers(inner, r)]
    if inner != "*":
        samples += [node] + ([f"{node}/zz", f"{node}/zz/yy"] if inner.endswith("/*") else [])
    if pattern_includes(outer, inner):
        assert all(pattern_covers(outer, r) for r in samples)
    elif inner == "*":
        assert outer != "*"
    else:
        assert not all(pattern_covers(outer, r) for r in samples)
    assert pattern_includes(outer, outer)
    # the keys whose grants cover a whole pattern are exactly the including patterns
    if inner != "*":
        for key in pattern_probe_keys(inner):
            assert pattern_includes(key, inner)
