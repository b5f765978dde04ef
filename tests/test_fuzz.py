"""Fuzzing ``read_ratings`` and ``mfcore.load`` with mutated files (a bounded run; the long
one is ``python benchmarks/fuzz.py``). See ``fuzz_harness`` for what each may do."""
import pytest

pytest.importorskip("hypothesis")
pytest.importorskip("pandas")

from hypothesis import given

import fuzz_harness as fz

RATING_EXAMPLES = 200
MODEL_EXAMPLES = 150
#: a mutated file's peak allocation, loaded and used (issue 20: under ~100 MB for a file under 10
#: KB; these hold a model of 30 users, so far less is needed)
HOSTILE_PEAK = 16 << 20
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
    # the mutation corpus (flipped bytes; members replaced, dropped, added, compressed, deep
    # JSON...): each file loads what was saved or raises ModelFileError, and, loaded and used,
    # stays far under the allocation bound (bombs of every zip method: test_persistence)
    from conftest import peak_allocation
    saved = fz.saved_models(str(tmp_path))
    outcomes, peaks = [], []

    @fz.fuzz_settings(MODEL_EXAMPLES)
    @given(fz.model_files(saved))
    def fuzz(case):
        data, original, _ = case
        outcome, peak = peak_allocation(lambda: fz.check_model_file(str(tmp_path), data, original))
        assert outcome in ("error", "loaded"), outcome
        outcomes.append(outcome)
        peaks.append(peak)

    fuzz()
    assert "loaded" in outcomes and "error" in outcomes
    assert len(peaks) >= MODEL_EXAMPLES and max(peaks) < HOSTILE_PEAK


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


ID_EXAMPLES = 15
CLI_EXAMPLES = 25


def test_string_ids_survive_read_fit_save_load_predict_and_cli_output(tmp_path):
    outcomes = []

    @fz.fuzz_settings(ID_EXAMPLES)
    @given(fz.string_id_files())
    def fuzz(case):
        outcomes.append(fz.check_string_ids(str(tmp_path), *case))

    fuzz()
    assert outcomes.count("round trip") == len(outcomes) >= ID_EXAMPLES


def test_hostile_command_line_values_exit_0_1_or_2_with_one_line(tmp_path):
    files = fz.cli_files(str(tmp_path))
    outcomes = []

    @fz.fuzz_settings(CLI_EXAMPLES)
    @given(fz.command_lines(fz.cli_options(), files))
    def fuzz(argv):
        outcomes.append(fz.check_command_line(argv))

    fuzz()
    assert {"exit 1", "exit 2"} <= set(outcomes)   # refusals of both kinds were reached


def test_a_usage_error_quotes_a_long_value_cut(tmp_path, capsys):
    from mfcore import cli
    with pytest.raises(SystemExit):
        cli.main(["recommend", "m.mfz", "1", "--rank-by", "x" * 5000])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "invalid choice" in last and "(5,0" in last and len(last) < 600


#: the most ``load`` (then predict and recommend) may allocate for a hostile file of a few KB


