"""``mfcore.SGD`` reproduces, bit for bit, the fits recorded by ``make_sgd_reference.py``.

``tests/data/make_sgd_reference.py`` wrote the records (parameter digests, 500 predictions,
history, best epoch) with the code of commit 5022567, one file per SIMD path.
"""
import importlib.util
import json
import os
import warnings

import numpy as np
import pytest

import mfcore
from mfcore import simd

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
spec = importlib.util.spec_from_file_location("make_sgd_reference",
                                              os.path.join(DATA, "make_sgd_reference.py"))
reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference)
CASES = reference.cases()


def _recorded(path):
    file = os.path.join(DATA, f"sgd_reference_{path}.npz")
    if not os.path.exists(file):
        pytest.skip(f"no recorded fits for SIMD path {path!r}")
    with np.load(file) as npz:
        return json.loads(str(npz["meta"])), {name: npz[name] for name in npz.files if name != "meta"}


@pytest.fixture(params=simd.supported())
def simd_path(request):
    before = simd.current()
    simd.select(request.param)
    yield request.param
    simd.select(before)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_model_reproduces_the_recorded_fits(simd_path, n_threads):
    meta, predictions = _recorded(simd_path)
    assert set(meta) == set(CASES)
    for name, make in CASES.items():
        got = reference.record(make(n_threads))
        assert np.array_equal(got.pop("predictions"), predictions[name]), name
        assert got == json.loads(json.dumps(meta[name])), name


def test_a_model_file_of_the_first_format_still_loads():
    model = mfcore.load(os.path.join(DATA, "model_format_v1.mfz"))
    assert type(model) is mfcore.Model
    qu, qi = np.array([f"u{x}" for x in range(30)]), np.arange(30) % 20
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pred = model.predict(qu, qi)
    assert np.array_equal(pred, np.load(os.path.join(DATA, "model_format_v1_predictions.npy")))
