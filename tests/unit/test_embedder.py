"""The embedders on the real MiniLM weights: the ONNX backend reproduces sentence-transformers
(exactly in fp32, the default; within quantization's error in int8), caches its exports, and
refuses configurations it cannot honour."""
import json
import os

import numpy as np
import pytest

from memos_cluster.core.config import EmbedderConfig
from memos_cluster.core.errors import ConfigError
from memos_cluster.embed import make_embedder
from memos_cluster.embed.onnx_embedder import OnnxEmbedder, export_key

TEXTS = [
    "What did Caroline research?",
    "Melanie ran a charity race for mental health on the Saturday before 25 May 2023, and "
    "she told Caroline all about how it felt to finish.",
    "",  # empty text: only [CLS] [SEP]
    "Émilie's café — naïve façade 🎨",
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def onnx(cache_dir):
    return make_embedder(EmbedderConfig(backend="onnx", precision="fp32"), cache_dir)


@pytest.fixture(scope="module")
def onnx_int8(cache_dir):
    return make_embedder(EmbedderConfig(backend="onnx", precision="int8"), cache_dir)


@pytest.fixture(scope="module")
def torch_embedder(cache_dir):
    return make_embedder(EmbedderConfig(backend="torch"), cache_dir)


def test_onnx_reproduces_sentence_transformers(onnx, torch_embedder):
    # One padded batch and one text at a time (the query path) must both match.
    want = torch_embedder.embed(TEXTS)
    batch = onnx.embed(TEXTS)
    single = np.concatenate([onnx.embed([t]) for t in TEXTS])
    assert batch.shape == single.shape == (len(TEXTS), 384)
    assert batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert (want * batch).sum(axis=1).min() > 0.9999
    assert (want * single).sum(axis=1).min() > 0.9999


def test_batches_larger_than_batch_size_keep_order(cache_dir):
    small = make_embedder(EmbedderConfig(backend="onnx", batch_size=3, precision="fp32"),
                          cache_dir)
    texts = [f"memory number {i} about topic {i % 4}" for i in range(10)]
    together = small.embed(texts)
    for i in (0, 4, 9):
        assert float(together[i] @ small.embed([texts[i]])[0]) > 0.9999


def test_export_is_cached_and_reused(onnx, cache_dir):
    onnx.embed(["warm"])
    files = [f for f in os.listdir(cache_dir) if f.endswith(".onnx")]
    assert len(files) == 1 and not any(f.endswith(".partial") for f in os.listdir(cache_dir))
    path = os.path.join(cache_dir, files[0])
    before = os.stat(path).st_mtime_ns
    again = make_embedder(EmbedderConfig(backend="onnx", precision="fp32"), cache_dir)
    again.embed(["hello"])
    assert os.stat(path).st_mtime_ns == before


def test_int8_stays_close_to_the_model_and_keeps_every_text_in_place(onnx_int8, torch_embedder,
                                                                    cache_dir):
    want = torch_embedder.embed(TEXTS)
    got = onnx_int8.embed(TEXTS)
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert (want * got).sum(axis=1).min() > 0.97
    # Batches are formed by length, not arrival order: every vector still lands at its text.
    singles = np.concatenate([onnx_int8.embed([t]) for t in TEXTS])
    assert (got * singles).sum(axis=1).min() > 0.9999
    assert {f for f in os.listdir(cache_dir) if f.endswith("-int8.onnx")}


def test_export_key_changes_with_the_model_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    first = export_key(tmp_path)
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')
    assert export_key(tmp_path) != first


def test_empty_input(onnx):
    assert onnx.embed([]).shape == (0, 384)


def test_onnx_refuses_a_model_without_mean_pooling(tmp_path):
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))
    embedder = OnnxEmbedder(str(tmp_path), str(tmp_path / "cache"), dim=384)
    with pytest.raises(ConfigError, match="mean pooling"):
        embedder.embed(["x"])


@pytest.mark.parametrize("config, key", [
    (EmbedderConfig(backend="tensorflow"), "embedder.backend"),
    (EmbedderConfig(backend="onnx", device="cuda"), "embedder.backend"),
    (EmbedderConfig(kind="word2vec"), "embedder.kind"),
])
def test_bad_embedder_config_names_the_key(config, key, tmp_path):
    with pytest.raises(ConfigError) as info:
        make_embedder(config, str(tmp_path))
    assert info.value.field == key


def test_an_unknown_precision_names_the_key():
    with pytest.raises(ConfigError) as info:
        EmbedderConfig(precision="int4")
    assert info.value.field == "embedder.precision"
