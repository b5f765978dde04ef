"""The entry point: the parser of every command, and how errors become exit codes."""
import argparse
import os
import sys
import traceback
import warnings

from .. import __version__, demo
from ..errors import (DataUnavailableError, IdKindError, ModelFileError, NotFittedError,
                      TrainingDivergedError, UnknownIdError, shown)
from .common import CommandError, say
from .train import add_train, add_tune
from .use import add_evaluate, add_info, add_predict, add_recommend, add_similar

#: What a user can fix (a bad file or value, training that diverged): one line, exit code 1.
#: Anything else is a bug in mfcore and keeps its traceback.
USER_ERRORS = (CommandError, ModelFileError, NotFittedError, DataUnavailableError,
               TrainingDivergedError, UnknownIdError, IdKindError, OSError, ValueError)


def add_demo(commands):
    p = commands.add_parser("demo", help="train and evaluate on MovieLens 100K (or synthetic data)",
                            description=demo.DESCRIPTION)
    demo.add_arguments(p)
    p.set_defaults(func=lambda args: demo.run(args.synthetic, not args.no_download, args.seed))


COMMANDS = [add_train, add_tune, add_evaluate, add_predict, add_recommend, add_similar, add_info,
            add_demo]


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors quote a value cut to a few hundred characters
    (argparse quotes it whole: a 5,000-character ``--ids`` became a 5,000-character line);
    its subcommands' parsers are of this class too."""

    def error(self, message):
        super().error(shown(message, limit=400, quote=False))


def build_parser():
    parser = _Parser(prog="mfcore",
                                     description="Biased matrix factorization for rating data.")
    parser.add_argument("--version", action="version", version=f"mfcore {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="on an error, print the full traceback too (so does the "
                        "environment variable MFCORE_DEBUG=1)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for add in COMMANDS:
        add(commands)
    for sub in commands.choices.values():
        sub.set_defaults(parser=sub)
    return parser


def _debugging(args):
    return args.traceback or os.environ.get("MFCORE_DEBUG", "").strip() not in ("", "0")


def _run(args):
    """Run the command; warnings it raises (unknown ids, merged duplicates, skipped lines)
    are printed as ``mfcore <command>: warning: ...`` on stderr, even when it then fails."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            args.func(args)
        finally:
            for w in caught:
                print(f"mfcore {args.command}: warning: {say(w.message)}", file=sys.stderr)


def main(argv=None):
    """Run one command; return its exit code (see ``mfcore.cli``).

    ``argv`` is the command line without the program name (default: ``sys.argv[1:]``), so
    scripts and tests call the command line without a subprocess.

    Examples
    --------
    >>> import os, tempfile
    >>> import mfcore
    >>> from mfcore.cli import main
    >>> path = os.path.join(tempfile.mkdtemp(), "model.mfz")
    >>> ratings = mfcore.datasets.synthetic(n_users=50, n_items=20, n_ratings=500, seed=0)
    >>> mfcore.ALS(k=2, iterations=2, seed=0).fit(ratings).save(path)
    >>> main(["predict", path, "--user", "1", "--item", "3"])   # doctest: +ELLIPSIS
    user,item,prediction
    1,3,...
    0
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported with the command's own usage line, not the top-level one
        args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        _run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. 'mfcore predict ... | head': stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (MemoryError, *USER_ERRORS) as exc:
        if _debugging(args):
            traceback.print_exc()
        if isinstance(exc, MemoryError):
            message = "not enough memory (try a smaller --k, or fewer ratings)"
        else:
            message = shown(say(exc), limit=1000, quote=False)  # (a 5,000-character path...)
        print(f"mfcore {args.command}: error: {message}", file=sys.stderr)
        return 1
    return 0
