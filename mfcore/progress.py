"""Progress of long work (fit epochs, search trials): a tqdm bar on a terminal, else nothing.

tqdm is optional (``pip install "mfcore[progress]"``). A bar is drawn on stderr when tqdm
is installed, stderr is a terminal and progress is on: the default, unless the
environment sets ``MFCORE_PROGRESS=0``; ``mfcore.progress.enable(False)`` turns it off
for the process. A bar opened while another is open (a trial's fit inside a search) is
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


def _tqdm():
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def enabled():
    """Whether a bar opened now is drawn: progress on, tqdm installed, stderr a terminal.

    Examples
    --------
    >>> from mfcore import progress
    >>> progress.enabled() in (True, False)   # False off a terminal or without tqdm
    True
    """
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(_state["on"] and isatty is not None and isatty() and _tqdm() is not None)


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
    """Print a line on stdout above the open bars (or plainly, when none is drawn)."""
    if _state["open"] and enabled():
        _tqdm().write(line, file=sys.stdout)
        sys.stdout.flush()
    else:
        print(line, flush=True)


@contextlib.contextmanager
def bar(total, desc, unit="it"):
    """A ``Bar`` for ``total`` steps, closed on leaving the block (also on an error)."""
    progress = Bar(total, desc, unit)
    _state["open"] += 1
    try:
        yield progress
    finally:
        _state["open"] -= 1
        progress.close()
