"""The command line: ``mfcore <command> ...`` (or ``python -m mfcore <command> ...``).

- ``main.py``: the parser of every command, ``--traceback``, and errors as exit codes;
- ``train.py``: ``train`` and ``tune`` (a flag for every hyperparameter);
- ``use.py``: ``evaluate``, ``predict``, ``recommend``, ``similar`` and ``info``;
- ``common.py``: what they share (reader options, progress lines, output checks).

Each command is one ``add_<name>(commands)`` function that declares its arguments and sets
``func``, the function that runs it; ``main.COMMANDS`` lists them in ``--help`` order. Adding a
command is writing one such function and listing it. The demo is ``mfcore.demo``.

Exit codes:

- 0: success;
- 1: a bad or unreadable file or data, an unknown id asked to fail, not enough memory, or
  training that diverged: one line naming the problem in command-line terms (``--lr 0.5``,
  not ``lr=0.5``); ``mfcore --traceback <command>`` or ``MFCORE_DEBUG=1`` prints the full
  traceback before it. Any other exception is a bug and keeps Python's traceback;
- 2: bad arguments (argparse's usage error);
- 130: interrupted (Ctrl-C);
- 141: the reader of the output went away (``mfcore predict ... | head``), stopped quietly as
  Unix tools do (128 + SIGPIPE).

Output paths are checked before any work. Progress (reading, training, trials) goes to
stderr: a bar on a terminal with tqdm installed (``mfcore.progress``), a line per phase
otherwise; ``-q`` silences it.
"""
from .main import main

__all__ = ["main"]
