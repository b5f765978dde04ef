"""What a user reads besides the code: the licence file, and no reference to files they lack."""
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _text(name):
    path = os.path.join(ROOT, name)
    if not os.path.exists(path):
        pytest.skip(f"{name} is not beside the tests (an installed test run)")
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def test_the_licence_file_matches_the_declared_licence():
    pyproject = _text("pyproject.toml")
    declared = re.search(r'^license\s*=\s*"([^"]+)"', pyproject, re.M)   # an SPDX expression
    assert declared and declared.group(1) == "BSD-3-Clause"
    assert re.search(r'^license-files\s*=\s*\["LICENSE"\]', pyproject, re.M)
    licence = _text("LICENSE")
    assert licence.startswith("BSD 3-Clause License")
    assert "Copyright (c) 2026, the mfcore developers" in licence
    assert "Neither the name of the copyright holder" in licence       # the third clause
    assert re.search(r"^include .*\bLICENSE\b", _text("MANIFEST.in"), re.M)  # in the sdist


def test_the_readme_speaks_of_no_notebook():
    # users have no notebook: the README states the demo's protocol instead
    readme = _text("README.md")
    assert "notebook" not in readme.lower()
    assert "80% training" in readme and "seed 888" in readme


def test_the_version_is_written_once_and_is_what_pip_sees():
    import importlib.metadata

    import mfcore
    from mfcore._version import __version__
    assert mfcore.__version__ == __version__ and re.fullmatch(r"\d+\.\d+\.\d+(\S*)", __version__)
    try:
        installed = importlib.metadata.version("mfcore")
    except importlib.metadata.PackageNotFoundError:
        installed = None   # an in-place build: no metadata to compare with
    if installed is not None and os.path.dirname(mfcore.__file__) != os.path.join(ROOT, "mfcore"):
        assert installed == __version__
    pyproject = _text("pyproject.toml")
    assert not re.search(r"^version\s*=\s*\"", pyproject, re.M)   # no second, literal copy
    assert 'version = {attr = "mfcore._version.__version__"}' in pyproject


def test_the_sdist_leaves_out_benchmarks_and_experiments():
    manifest = _text("MANIFEST.in")
    assert re.search(r"^prune benchmarks$", manifest, re.M) and re.search(r"^prune experiments$", manifest, re.M)
    assert "recursive-include benchmarks" not in manifest


def test_import_mfcore_stays_light(tmp_path):
    # heavy or networking modules load only when a function needs them (issue 24: import
    # mfcore under 0.3 s); a subprocess, so that nothing this test run imported counts
    import subprocess
    import sys

    import mfcore
    heavy = ("pandas", "scipy", "dask", "distributed", "tqdm", "sklearn", "http", "ssl",
             "urllib.request", "email")
    code = (f"import sys, mfcore; print(sorted(m for m in {heavy!r} if m in sys.modules))")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(mfcore.__file__)))
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env,
                         capture_output=True, text=True).stdout
    assert out.strip() == "[]", f"import mfcore imported {out.strip()}"


def test_importing_from_an_unbuilt_source_folder_says_to_change_folder(tmp_path):
    # issue 21 (newcomer report, first contact): the installed mfcore was hidden by the
    # clone's unbuilt mfcore/ in the working folder, and the error said to install it
    import shutil
    import subprocess
    import sys

    import mfcore
    source = tmp_path / "clone"
    (source / "mfcore").mkdir(parents=True)
    shutil.copy(mfcore.__file__, source / "mfcore" / "__init__.py")  # no compiled kernels
    (source / "setup.py").write_text("")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", "import mfcore"], cwd=source, env=env,
                         capture_output=True, text=True)
    last = run.stderr.strip().splitlines()[-1]
    assert run.returncode == 1 and "ImportError: mfcore's compiled extensions are missing" in last
    assert f"this is mfcore's unbuilt source folder ({source})" in last
    assert "run Python from another folder" in last
