"""`bench kv`'s sizes are checked against the model before any work (a block past the context
used to fail after eight minutes), and its defaults fit the model; one tiny run end to end."""
import pytest

from memos_cluster.bench.kv import fitting_sizes, run_kv_bench
from memos_cluster.core.errors import InvalidArgument


def test_default_sizes_fit_the_context_and_given_ones_are_checked():
    assert fitting_sizes(8192, None, (32, 512)) == [512, 2048, 7168]
    assert fitting_sizes(2048, None, (32, 512)) == [512, 1024]
    assert fitting_sizes(8192, [512, 4096], (32,)) == [512, 4096]
    with pytest.raises(InvalidArgument, match=r"\[8192\] do not fit the model's 8192-token"):
        fitting_sizes(8192, [512, 2048, 8192], (32, 512))


def test_a_run_on_the_built_in_model_reports_identical_output(tmp_path):
    said = []
    result = run_kv_bench("builtin:tiny-llama", tmp_path, memory_tokens=[128],
                          query_tokens=[16], repeats=1, say=said.append)
    [row] = result["rows"]
    assert row["identical"] and row["prefill_tokens_saved"] >= 128
    assert any("TTFT full" in line for line in said)
