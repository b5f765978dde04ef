"""The example notebook runs end to end in a real Jupyter kernel, and fits show a progress bar
there (issue 21: nothing was drawn in notebooks)."""
import os
import pathlib

import pytest

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "examples" / "movielens.ipynb"


@pytest.mark.slow
def test_example_notebook_runs_in_a_kernel_and_shows_progress_bars(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    pytest.importorskip("tqdm")
    import mfcore
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # the kernel imports the mfcore this test imports (installed, or built in place)
    source = str(pathlib.Path(mfcore.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [source] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        MFCORE_CACHE=str(tmp_path / "cache"))
    env.pop("MPLBACKEND", None)  # the kernel's own (inline) backend draws the figure
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    old = dict(os.environ)
    os.environ.update(env)  # the kernel process inherits this environment
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    nbformat.write(notebook, tmp_path / "executed.ipynb")
    outputs = [out for cell in notebook.cells if cell.cell_type == "code"
               for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    streams = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    widgets = [out for out in outputs if "application/vnd.jupyter.widget-view+json"
               in out.get("data", {})]
    assert widgets or ("SGD fit" in streams and "100%" in streams), streams[-2000:]
    assert "search over SGD" in streams or widgets
    assert any("image/png" in out.get("data", {}) for out in outputs)  # the learning curve
    assert "the 90% interval holds" in streams
