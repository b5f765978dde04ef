"""Fuzzing ``read_ratings`` and ``mfcore.load`` with mutated files (a bounded run; the long
one is ``python benchmarks/fuzz.py``). See ``fuzz_harness`` for what each may do."""
import pytest

pytest.importorskip("hypothesis")
pytest.importorskip("pandas")

from hypothesis import given

import fuzz_harness as fz

RATING_EXAMPLES = 200
MODEL_EXAMPLES = 150
PARQUET_EXAMPLES = 60


def test_mutated_rating_files_read_correctly_or_raise_value_error(tmp_path):
    outcomes = []

    @fz.fuzz_settings(RATING_EXAMPLES)
    @given(fz.rating_files())
    def fuzz(case):
        name, data, text, on_bad_lines = case
        outcomes.append(fz.check_rating_file(str(tmp_path), name, data, text, on_bad_lines))

    fuzz()
    # the mutations leave many files readable: the comparison with the reference is exercised
    assert outcomes.count("read") > RATING_EXAMPLES // 10 and "error" in outcomes


def test_mutated_model_files_load_correctly_or_raise_model_file_error(tmp_path):
    saved = fz.saved_models(str(tmp_path))
    outcomes = []

    @fz.fuzz_settings(MODEL_EXAMPLES)
    @given(fz.model_files(saved))
    def fuzz(case):
        data, original, _ = case
        outcomes.append(fz.check_model_file(str(tmp_path), data, original))

    fuzz()
    assert "loaded" in outcomes and "error" in outcomes


@pytest.mark.parametrize("text", [
    "1,10,5\n2,20,4\n",                              # plain
    "userId,movieId,rating\r\n1,10,5\r\n",           # header, CRLF
    "1 10 5 7\n\n2 20 4 8\n",                        # whitespace, a blank line
])
def test_the_reference_parser_agrees_on_plain_files(tmp_path, text):
    # the oracle itself: on files it can read, it and read_ratings agree
    assert fz.check_rating_file(str(tmp_path), "r.dat", text.encode(), text.encode(),
                                "error") == "read"


def test_parquet_files_read_exactly_or_raise_value_error(tmp_path):
    pytest.importorskip("pyarrow", reason="Parquet needs pyarrow")
    outcomes = []

    @fz.fuzz_settings(PARQUET_EXAMPLES)
    @given(fz.parquet_files())
    def fuzz(case):
        outcomes.append(fz.check_parquet_file(str(tmp_path), *case))

    fuzz()
    assert "read" in outcomes and "error" in outcomes
