"""Filters render to Milvus expressions in which user values only ever appear as literals: any
string, encoded, is read back by the real engine (milvus-lite 2.5, Milvus's own expression
parser) as exactly that string, matching the one row that holds it and no other."""
import uuid

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.types import SearchFilter, TimeRange
from memos_cluster.tiers.plaintext.filters import build_search_expr, encode_literal
from memos_cluster.tiers.plaintext.schema import EVENT_TIME_NONE

printable = st.text(alphabet=st.characters(blacklist_categories=("Cs",), min_codepoint=0x20)
                    | st.sampled_from(["\n", "\t", "\r", '"', "'", "\\", "{", "}"]), max_size=40)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """A milvus-lite collection of (pk, value) rows, a decoy row among them."""
    from pymilvus import DataType

    from memos_cluster.tiers.plaintext.store import open_client

    client = open_client(str(tmp_path_factory.mktemp("filters") / "f.db"))
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("value", DataType.VARCHAR, max_length=1024)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection("f", schema=schema, index_params=index, consistency_level="Strong")
    client.insert("f", [{"pk": "decoy", "value": "decoy", "v": [0.0, 1.0]}])
    yield client
    client.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(printable)
def test_any_string_encodes_to_exactly_that_string(engine, value):
    if "\n" in value or "\r" in value:  # no Milvus string literal holds a line break
        with pytest.raises(InvalidArgument):
            encode_literal(value)
        return
    pk = uuid.uuid4().hex
    engine.insert("f", [{"pk": pk, "value": value, "v": [1.0, 0.0]}])
    rows = engine.query("f", filter=f"value == {encode_literal(value)}", output_fields=["pk"])
    assert {r["pk"] for r in rows} - {pk} <= {p for p in _same_value(engine, value)}
    assert pk in {r["pk"] for r in rows}
    assert "decoy" not in {r["pk"] for r in rows} or value == "decoy"


def _same_value(engine, value):
    """Rows an earlier example stored with the same value (hypothesis repeats values)."""
    rows = engine.query("f", filter='pk != ""', output_fields=["pk", "value"])
    return {r["pk"] for r in rows if r["value"] == value}


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


def test_an_event_time_range_excludes_the_engines_stand_in_for_none():
    flt = SearchFilter(event_time=TimeRange(end_ms=200))
    assert f"(event_time_ms != {EVENT_TIME_NONE})" in build_search_expr(
        ["a"], flt, EVENT_TIME_NONE).render()
    assert "!=" not in build_search_expr(["a"], flt, None).render()  # NULL compares false
    assert "event_time" not in build_search_expr(["a"], SearchFilter(), EVENT_TIME_NONE).render()
