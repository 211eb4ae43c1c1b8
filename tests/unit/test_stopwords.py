import pytest

from memos_cluster.core.errors import ConfigError
from memos_cluster.tiers.plaintext.stopwords import stop_words


def test_named_lists_and_custom_words():
    assert stop_words("none") == []
    assert "the" in stop_words("lucene") and "when" not in stop_words("lucene")
    assert {"when", "did", "the"} <= set(stop_words("extended"))
    assert stop_words("Foo, bar") == ["foo", "bar"]


def test_an_empty_list_is_a_config_error():
    with pytest.raises(ConfigError):
        stop_words(" , ")
