"""Filters render to Milvus expressions in which user values only ever appear as literals."""
import pytest
from hypothesis import given, settings, strategies as st
from milvus_lite.search.filter.tokens import TokenKind, tokenize

from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.types import SearchFilter, TimeRange
from memos_cluster.tiers.plaintext.filters import build_search_expr, encode_literal

printable = st.text(alphabet=st.characters(blacklist_categories=("Cs",), min_codepoint=0x20)
                    | st.sampled_from(["\n", "\t", "\r", '"', "'", "\\", "{", "}"]), max_size=40)


@settings(max_examples=300, deadline=None)
@given(printable)
def test_any_string_encodes_to_exactly_one_string_token(value):
    tokens = [t for t in tokenize(encode_literal(value)) if t.kind is not TokenKind.EOF]
    assert len(tokens) == 1
    assert tokens[0].kind is TokenKind.STRING
    assert tokens[0].value == value


@pytest.mark.parametrize("value,expected", [(True, "true"), (3, "3"), (2.5, "2.5"),
                                            (["a", 1], '["a", 1]')])
def test_scalars_and_lists(value, expected):
    assert encode_literal(value) == expected


@pytest.mark.parametrize("value", [float("inf"), {"a": 1}, None, "bell\x07"])
def test_unencodable_values_raise(value):
    with pytest.raises(InvalidArgument):
        encode_literal(value)


def test_search_expression_scopes_cubes_first_and_holds_values_apart():
    injection = 'x" or cube_id != "'
    expr = build_search_expr(["alice", "bob"], SearchFilter(
        memory_types=("fact",), metadata_equals=(("topic", injection),),
        event_time=TimeRange(100, 200)))
    assert expr.template.startswith("(cube_id in {p0})")
    assert injection not in expr.template
    rendered = expr.render()
    assert 'metadata["topic"] == "x\\" or cube_id != \\""' in rendered
    assert "(event_time_ms >= 100) and (event_time_ms < 200)" in rendered
