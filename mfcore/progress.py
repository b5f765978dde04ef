"""Progress of long work (fit epochs, search trials): a tqdm bar on a terminal or in a
Jupyter notebook, else nothing.

tqdm is optional (``pip install tqdm``, or the ``progress`` extra). A bar is drawn when
tqdm is installed, progress is on (the default, unless the environment sets
``MFCORE_PROGRESS=0``; ``mfcore.progress.enable(False)`` turns it off for the process)
and there is someone to see it: on stderr when it is a terminal, or in the output of a
Jupyter (IPython kernel) cell, as ``tqdm.auto`` draws it there (a widget with ipywidgets
installed, else text on the cell's stderr). A bar opened while another is open (a trial's fit inside a search) is
cleared when it ends. Lines written through a bar (``verbose`` output) go to stdout
above it; without a bar they are plain printed lines.
"""
import contextlib
import os
import sys

__all__ = ["enable", "enabled", "bar", "write"]

_state = {"on": os.environ.get("MFCORE_PROGRESS", "1").strip() not in ("0", "false", "no"),
          "open": 0}


def enable(flag=True):
    """Turn progress bars on (the default) or off for this process.

    Examples
    --------
    >>> from mfcore import progress
    >>> progress.enable(False)      # no bars in this process
    >>> progress.enabled()
    False
    >>> progress.enable(True)
    """
    _state["on"] = bool(flag)


def _in_notebook():
    """Whether this runs in a Jupyter kernel (IPython's ZMQ shell), where stderr is no
    terminal but a cell's output shows what is drawn."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if hasattr(ipython, "get_ipython") else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _tqdm():
    """tqdm's bar class for where this runs (``tqdm.auto``'s choice, without its warning
    when a notebook lacks ipywidgets), or None without tqdm."""
    try:
        from tqdm.std import tqdm
    except ImportError:
        return None
    if _in_notebook():
        try:
            import ipywidgets  # noqa: F401  (tqdm.notebook's widget needs it)
            from tqdm.notebook import tqdm
        except ImportError:
            pass
    return tqdm


def enabled():
    """Whether a bar opened now is drawn: progress on, tqdm installed, and stderr a
    terminal or a Jupyter cell's output.

    Examples
    --------
    >>> from mfcore import progress
    >>> progress.enabled() in (True, False)   # False off a terminal and Jupyter, or without tqdm
    True
    """
    isatty = getattr(sys.stderr, "isatty", None)
    seen = (isatty is not None and isatty()) or _in_notebook()
    return bool(_state["on"] and seen and _tqdm() is not None)


class Bar:
    """One unit of work at a time: ``update(**figures)``, ``write(line)``; a no-op when off."""

    def __init__(self, total, desc, unit):
        self._tqdm = None
        if enabled():
            self._tqdm = _tqdm()(total=total, desc=desc, unit=f" {unit}", file=sys.stderr,
                                 leave=_state["open"] == 0, dynamic_ncols=True)

    def update(self, **figures):
        """One more step done; ``figures`` (e.g. val_rmse=0.91) are shown beside the bar."""
        if self._tqdm is not None:
            if figures:
                self._tqdm.set_postfix({k: f"{v:.4f}" if isinstance(v, float) else v
                                        for k, v in figures.items()}, refresh=False)
            self._tqdm.update(1)

    def write(self, line):
        """Print a line (on stdout) without breaking the bar."""
        write(line)

    def close(self):
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None


def write(line):
    """Print a line on stdout above the open bars (or plainly, when none is drawn).

    Examples
    --------
    >>> from mfcore import progress
    >>> progress.write("epoch 1: val RMSE 0.9123")
    epoch 1: val RMSE 0.9123
    """
    if _state["open"] and enabled():
        _tqdm().write(line, file=sys.stdout)
        sys.stdout.flush()
    else:
        print(line, flush=True)


@contextlib.contextmanager
def bar(total, desc, unit="it"):
    """A ``Bar`` for ``total`` steps, closed on leaving the block (also on an error).

    Examples
    --------
    >>> from mfcore import progress
    >>> with progress.bar(3, "sweeps", unit="sweep") as sweeps:   # drawn on a terminal or in Jupyter
    ...     for rmse in (0.95, 0.93, 0.92):
    ...         sweeps.update(val_rmse=rmse)
    """
    progress = Bar(total, desc, unit)
    _state["open"] += 1
    try:
        yield progress
    finally:
        _state["open"] -= 1
        progress.close()
