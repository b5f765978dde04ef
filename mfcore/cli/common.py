"""What every command shares: the reader options, progress lines, output-path checks, model
loading, JSON output, and the spelling of a library name as a flag."""
import json
import os
import sys
import time

from ..errors import InvalidParameterError, Message, Setting
from ..ids import STR_KIND
from ..io import read_pairs, read_ratings
from ..persistence import load


class CommandError(Exception):
    """A problem the user can fix (a bad file, an unknown id...): printed, exit code 1."""


def flag(name):
    """The command-line flag of a library parameter: ``n_iter_no_change`` -> ``--n-iter-no-change``."""
    return "--" + name.replace("_", "-")


#: arguments of the library whose flag is not ``--name VALUE``
_SPELLINGS = {
    "columns": lambda s: "--columns" + (" " + ",".join(s.value) if s.value else ""),
    "exclude_seen": lambda s: "--include-seen",  # messages name it only to turn it off
    "validation_fraction": lambda s: "--val" + (f" {s.text}" if s.text else ""),
}


def spelled(setting):
    """An ``errors.Setting`` as the command line writes it: ``lr=0.05`` -> ``--lr 0.05``,
    ``ids='str'`` -> ``--ids str``, ``columns=['user', 'item']`` -> ``--columns user,item``."""
    if setting.name in _SPELLINGS:
        return _SPELLINGS[setting.name](setting)
    if not setting.text:
        return flag(setting.name)
    value = setting.value if isinstance(setting.value, str) else setting.text
    return f"{flag(setting.name)} {value}"


def say(problem):
    """A library exception, warning or message in command-line terms, on one line: the
    parameter of an ``InvalidParameterError`` (its fields ``name``, ``value``, ``rule``) and
    the settings a message names (``errors.Message``) as flags, the rest as the library
    wrote it."""
    text = problem
    if isinstance(problem, InvalidParameterError):
        text = f"{spelled(Setting(problem.name))} must be {problem.rule}, got {problem.value!r}"
    elif isinstance(problem, BaseException):
        first = problem.args[0] if problem.args else None
        text = first if isinstance(first, Message) else str(problem)
    if isinstance(text, Message):
        text = text.spell(spelled)
    return " ".join(str(text).split("\n"))


def add_reader_options(parser):
    """The options of ``read_ratings``/``read_pairs`` as flags (--sep, --header, --columns...)."""
    group = parser.add_argument_group("reading rating files")
    group.add_argument("--sep", default=None,
                       help="field separator: '::', tab, ',', ';' or whitespace (default: detect)")
    group.add_argument("--header", dest="header", action="store_true", default=None,
                       help="the first line names the columns (default: detect)")
    group.add_argument("--no-header", dest="header", action="store_false",
                       help="the first line is data")
    group.add_argument("--skip-bad-lines", action="store_true",
                       help="drop malformed lines with a warning instead of failing")
    group.add_argument("--columns", default=None, metavar="NAMES",
                       help="the file's columns in order, from user, item, rating, timestamp "
                       "(e.g. --columns rating,user,item; default: from the header's names, "
                       "else user,item,rating[,timestamp])")
    group.add_argument("--usecols", default=None, metavar="NAMES",
                       help="the fields to read, by header name or 0-based position, the "
                       "others skipped (e.g. --usecols cust,prod,score with --columns "
                       "user,item,rating); a header's unknown extra columns (tag...) are "
                       "skipped without it")
    group.add_argument("--encoding", default="utf-8",
                       help="the text's encoding (default utf-8; e.g. latin-1)")
    group.add_argument("--ids", choices=("auto", "int", "str"), default=None,
                       help="id type (default: detect; for a model's file, the model's type)")
    group.add_argument("--member", default=None, metavar="NAME",
                       help="the file to read inside a .zip archive (default: its only file, "
                       "or its one ratings file)")


def status(args, text):
    """A progress line on stderr (not with -q): what the command is doing now."""
    if not getattr(args, "quiet", False):
        print(text, file=sys.stderr, flush=True)


def _positions(usecols):
    """--usecols as read_ratings takes it: names, or 0-based positions given as digits."""
    if usecols is None:
        return None
    return [int(c) if c.strip().isdigit() else c.strip() for c in usecols.split(",")]


def reader_options(args, model=None):
    """The command's reader options as ``read_ratings`` (and ``RatingChunks``) take them."""
    ids = args.ids
    if ids is None:  # string-id models read '42' as the id '42', not the number 42
        kinds = {model.user_map_.kind, model.item_map_.kind} if model is not None else set()
        ids = "str" if kinds == {"str"} else "auto"
    return dict(sep="\t" if args.sep == "tab" else args.sep, header=args.header,
                columns=args.columns, ids=ids, member=args.member,
                on_bad_lines="skip" if args.skip_bad_lines else "error",
                usecols=_positions(args.usecols), encoding=args.encoding)


def read(args, path, pairs=False, model=None):
    """Read a ratings (or pairs) file with the command's reader options; ``-`` reads
    standard input (``cat pairs.csv | mfcore predict model.mfz -``)."""
    reader = read_pairs if pairs else read_ratings
    status(args, f"reading {path} ...")
    start = time.perf_counter()
    source = sys.stdin.buffer if path == "-" else path
    frame = reader(source, **reader_options(args, model))
    status(args, f"read {len(frame):,} {'pairs' if pairs else 'ratings'} in "
           f"{time.perf_counter() - start:.1f} s")
    return frame


def check_output(path, option):
    """Refuse an output path that cannot be written, before any work is done."""
    if path is None:
        return
    if os.path.isdir(path):
        raise CommandError(f"{option} {path}: is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CommandError(f"{option} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise CommandError(f"{option} {path}: not writable (permission denied)")


def load_fitted(path):
    """The fitted model in the file at ``path`` (an unfitted one is a CommandError)."""
    model = load(path)
    if not hasattr(model, "user_factors_"):
        raise CommandError(f"{path} holds an unfitted model; train one with 'mfcore train'")
    return model


def print_json(obj):
    print(json.dumps(obj, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def times_of(model, frame):
    """``{"times": ...}`` for a model with time terms and a table with a timestamp column
    (its predictions then use them), else nothing."""
    if getattr(model, "time_encoding_", None) is not None and "timestamp" in frame:
        return {"times": frame["timestamp"].to_numpy()}
    return {}


def add_feature_options(parser):
    """--user-features / --item-features: side feature tables (ALS, BayesianMF)."""
    for side in ("user", "item"):
        parser.add_argument(f"--{side}-features", metavar="FILE", default=None,
                            help=f"{side} feature table: MovieLens' "
                            + ("u.user or users.dat" if side == "user"
                               else "u.item, movies.dat or movies.csv")
                            + " by name, else a CSV (or .parquet) file whose first column is "
                            f"the {side} id (--algorithm als or bayes; see mfcore.features)")


def read_features(path, option, kind=None):
    """A feature table from ``path`` (see ``add_feature_options``), indexed by id; with
    ``kind`` "str" (the ids of the ratings, or the model's, are text) integer ids are
    read as text too, as the rating reader reads ``42`` of a file of text ids."""
    import pandas as pd

    from ..datasets import SIDE_FILES, read_movielens_side

    if not os.path.isfile(path):
        raise CommandError(f"{option}: no such file: {path}")
    try:
        if os.path.basename(path) in SIDE_FILES:
            return read_movielens_side(path)
        table = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    except (ValueError, OSError, ImportError) as exc:
        raise CommandError(f"{option}: cannot read {path}: {exc}") from exc
    if table.shape[1] < 2:
        raise CommandError(f"{option}: {path} needs an id column and at least one feature "
                           f"column, got columns {list(table.columns)}")
    table = table.set_index(table.columns[0])
    if kind == STR_KIND and table.index.dtype.kind in "iu":
        table.index = table.index.astype(str)
    return table


def feature_kwargs(args, kinds=None):
    """``user_features=``/``item_features=`` for the files given on the command line;
    ``kinds``: each side's id kind (see ``read_features``)."""
    kinds = kinds or {}
    return {f"{side}_features": read_features(path, f"--{side}-features", kinds.get(side))
            for side, path in (("user", args.user_features), ("item", args.item_features))
            if path is not None}
