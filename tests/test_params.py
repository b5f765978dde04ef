"""Parameter constraints: what each says, refuses and reads from the command line."""
import math

import numpy as np
import pytest

import mfcore
from mfcore import params as p


@pytest.mark.parametrize("rule, text, good, bad", [
    (p.Interval(int, 1), "an integer >= 1", [1, np.int64(7)], [0, 1.5, True, "nonsense"]),
    (p.Interval(float, 0.0, closed="neither"), "a finite number > 0.0", [1e-9, 3],
     [0.0, math.nan, math.inf, True, "nonsense"]),
    (p.Optional(p.Interval(float, 0, 1, closed="neither")),
     "None or a number strictly between 0 and 1", [None, 0.5], [0.0, 1.0, math.nan, "nonsense"]),
    (p.Options("mean", "last"), "one of ('mean', 'last')", ["last"], ["MEAN", 0, None]),
    (p.Boolean(), "True or False", [True, np.bool_(False)], [2, None, "nonsense"]),
    (p.Seed(), "None, an integer >= 0 or a numpy Generator",
     [None, 0, np.random.default_rng(1)], [-1, 1.5, "nonsense"]),
    (p.Threads(), "None or -1 (all available CPUs) or an integer from 1 to 1024", [None, -1, 4],
     [0, -2, 1025, 1.5]),
])
def test_a_rule_says_itself_and_refuses_its_invalid_values(rule, text, good, bad):
    assert str(rule) == text
    for value in good:
        rule.check("x", value)
    assert all(not rule.accepts(v) for v in rule.invalid_values())
    for value in bad:
        with pytest.raises(mfcore.InvalidParameterError) as info:
            rule.check("x", value)
        error = info.value
        assert (error.name, error.value, error.rule) == ("x", value, text)
        assert str(error) == f"x must be {text}, got {value!r}"
        assert isinstance(error, ValueError) and isinstance(error, TypeError)


def test_rules_read_command_line_text():
    assert p.Interval(int, 1).cli_type()("3") == 3
    assert p.Interval(float, 0.0).cli_type()("1e-3") == 0.001
    assert p.Optional(p.Interval(int, 1)).cli_type()("None") is None
    assert p.Boolean().cli_type()("false") is False
    assert p.Options("a", "b").cli_type()("a") == "a"
    assert p.Threads().cli_type()("-1") == -1


def test_search_checks_its_options_with_the_same_rules():
    for options, name in (({"validation_fraction": 1.0}, "validation_fraction"),
                          ({"cv": 1}, "cv"), ({"n_iter": 0}, "n_iter")):
        with pytest.raises(mfcore.InvalidParameterError) as info:
            mfcore.Search({"k": [2]}, **options).check()
        assert info.value.name == name
