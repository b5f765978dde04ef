"""The commands that use a saved model: ``evaluate``, ``predict``, ``recommend``, ``similar``
and ``info``."""
import argparse
import csv
import inspect
import os
import re
import sys

import numpy as np

from ..errors import shown
from ..metrics import ranking_metrics
from ..persistence import atomic_file, load
from ..recommend import RANK_BY
from .common import (CommandError, add_feature_options, add_reader_options, check_output,
                     feature_kwargs, load_fitted, print_json, read, read_features, status,
                     times_of)

MODEL_HELP = "model file written by 'mfcore train'"


# --- evaluate ---------------------------------------------------------------------------

def _add_rank_by_option(parser):
    parser.add_argument("--rank-by", choices=RANK_BY, default=None,
                        help="rank by the predicted rating, or by the choice model that weighs "
                        "it with how often items were rated (default: the model's, see "
                        "FactorModel.recommend)")


def add_evaluate(commands):
    p = commands.add_parser("evaluate", help="RMSE and MAE (or top-N metrics) of a model on "
                            "a ratings file")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("ratings", help="held-out ratings file")
    p.add_argument("--ranking", action="store_true",
                   help="top-N metrics instead: NDCG, precision, recall, MAP, hit rate and "
                   "coverage at k over every unseen item (mfcore.metrics.ranking_metrics)")
    p.add_argument("-k", "--k", type=_count, default=None,
                   help="with --ranking: list length (default 10)")
    p.add_argument("--threshold", type=float, default=None,
                   help="with --ranking: a held-out rating >= this is relevant (default 4)")
    _add_rank_by_option(p)
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    add_reader_options(p)
    p.set_defaults(func=run_evaluate)


def run_evaluate(args):
    if not args.ranking and (args.k, args.threshold, args.rank_by) != (None, None, None):
        args.parser.error("-k, --threshold and --rank-by go with --ranking")
    status(args, f"loading {args.model} ...")
    model = load_fitted(args.model)
    data = read(args, args.ratings, model=model)
    status(args, f"evaluating on {len(data):,} ratings ...")
    if args.ranking:
        return _print_ranking(args, model, data)
    scores = model.evaluate(data["user"], data["item"], data["rating"], **times_of(model, data))
    if args.json:
        print_json(scores)
        return
    print(f"RMSE {scores['rmse']:.4f}  MAE {scores['mae']:.4f}  on {scores['n']:,} ratings "
          f"({scores['unknown_users']} unknown users, {scores['unknown_items']} unknown items)")


def _print_ranking(args, model, data):
    scores = ranking_metrics(model, data["user"], data["item"], data["rating"],
                             k=10 if args.k is None else args.k,
                             threshold=4.0 if args.threshold is None else args.threshold,
                             rank_by=args.rank_by)
    if args.json:
        print_json(scores)
        return
    k = scores["k"]
    print(f"NDCG@{k} {scores['ndcg']:.4f}  precision@{k} {scores['precision']:.4f}  "
          f"recall@{k} {scores['recall']:.4f}  MAP@{k} {scores['map']:.4f}  "
          f"hit rate {scores['hit_rate']:.4f}  coverage {scores['coverage']:.4f}")
    print(f"over {scores['n_users']:,} users with a rating >= {scores['threshold']:g} "
          f"({scores['unknown_users']} unknown to the model, given the most-rated items)")


# --- predict ----------------------------------------------------------------------------

def add_predict(commands):
    p = commands.add_parser("predict", help="predicted ratings for user/item pairs, as CSV",
                            description="Predict ratings for user/item pairs given in a file "
                            "(user, item[, rating...]) or with --user/--item; writes CSV.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("pairs", nargs="?", help="file of user, item pairs (a rating column is "
                   "kept); - reads them from standard input")
    p.add_argument("--user", nargs="+", default=None, help="user ids (with --item)")
    p.add_argument("--item", nargs="+", default=None, help="item ids, one per --user id")
    p.add_argument("-o", "--output", default=None, help="CSV file to write (default: stdout)")
    p.add_argument("--unknown", choices=("fallback", "nan", "error"), default="fallback",
                   help="unknown ids: predict from the biases that are known (default), "
                   "write nan, or fail")
    p.add_argument("--std", action="store_true",
                   help="also write std, the predictive standard deviation (a bayes model "
                   "only): prediction +- 1.645 std is a central 90%% interval")
    add_feature_options(p)
    add_reader_options(p)
    p.set_defaults(func=run_predict)


def _ids_for(idmap, values):
    """Command-line id strings as the model's id type."""
    if idmap.kind == "str":
        return list(values)
    for v in values:   # (int() quotes a bad value whole, or speaks of Python's digit limit)
        if not re.fullmatch(r"\s*[+-]?[0-9]{1,40}\s*", v):
            raise CommandError(f"the model's ids are integers: {shown(v)} is not one")
    return [int(v) for v in values]


def run_predict(args):
    import pandas as pd  # lazily: pandas is heavy, and no other command needs it here

    if (args.pairs is None) == (args.user is None):
        args.parser.error("give either a pairs file or --user/--item ids")
    if (args.user is None) != (args.item is None):
        args.parser.error("--user and --item go together")
    if args.user is not None and len(args.user) != len(args.item):
        args.parser.error(f"{len(args.user)} --user ids but {len(args.item)} --item ids")
    check_output(args.output, "-o")
    model = load_fitted(args.model)
    features = feature_kwargs(args, {"user": model.user_map_.kind, "item": model.item_map_.kind})
    if features and getattr(model, "user_feature_encoding_", None) is None and \
            getattr(model, "item_feature_encoding_", None) is None:
        raise CommandError(f"--user-features/--item-features: {args.model} was trained "
                           "without side features")
    if args.pairs is not None:
        frame = read(args, args.pairs, pairs=True, model=model)
    else:
        frame = pd.DataFrame({"user": _ids_for(model.user_map_, args.user),
                              "item": _ids_for(model.item_map_, args.item)})
    out = frame[["user", "item"] + (["rating"] if "rating" in frame else [])].copy()
    if args.std:
        if "return_std" not in inspect.signature(model.predict).parameters:
            raise CommandError(f"--std needs a model with predictive uncertainty (trained with "
                               f"--algorithm bayes); {args.model} holds a "
                               f"{type(model).__name__}")
        out["prediction"], out["std"] = model.predict(frame["user"], frame["item"],
                                                      unknown=args.unknown, return_std=True,
                                                      **times_of(model, frame), **features)
    else:
        out["prediction"] = model.predict(frame["user"], frame["item"], unknown=args.unknown,
                                          **times_of(model, frame), **features)
    if args.output:
        with atomic_file(args.output, "predictions file", text=True) as fh:
            out.to_csv(fh, index=False, float_format="%.4f")
        print(f"wrote {len(out):,} predictions to {args.output}", file=sys.stderr)
    else:
        out.to_csv(sys.stdout, index=False, float_format="%.4f")


# --- recommend / similar ---------------------------------------------------------------

def _count(text):
    """-n: how many ids per query, at least 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _ranked_command(commands, name, ids, ids_help, count_help, **texts):
    """A command that writes ranked CSV (recommend, similar): the model file, the query ids
    and -n, how many per query (at least 1)."""
    p = commands.add_parser(name, **texts)
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument(ids, nargs="+", help=ids_help)
    p.add_argument("-n", type=_count, default=10, help=f"{count_help} (default 10)")
    return p


def add_recommend(commands):
    p = _ranked_command(commands, "recommend", "users", "user ids", "items per user",
                        help="top-N items for users, as CSV",
                        description="The N best items for each user, skipping the items "
                        "the user rated in training, by the model's default rule (--rank-by). "
                        "Writes CSV: user, rank, item, score (what was ranked by: the "
                        "predicted rating, unclipped, or it plus the choice term).")
    p.add_argument("--include-seen", action="store_true",
                   help="also recommend items the user rated in training")
    p.add_argument("--unknown", choices=("fallback", "error"), default="fallback",
                   help="a user the model does not know: the most-rated items in training "
                   "(default, with a warning) or fail")
    p.add_argument("--user-features", metavar="FILE", default=None,
                   help="user feature table (as for train): users unseen in training with a "
                   "row there are ranked from their features (a model trained with "
                   "--user-features)")
    _add_rank_by_option(p)
    p.set_defaults(func=run_recommend)


def _write_ranked(header, queries, items, scores):
    """CSV rows query, rank, id, score; padded slots (score NaN) are left out."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    for query, row_items, row_scores in zip(queries, items, scores):
        for rank, (item, score) in enumerate(zip(row_items, row_scores), start=1):
            if not np.isnan(score):
                writer.writerow([query, rank, item, f"{score:.4f}"])


def run_recommend(args):
    model = load_fitted(args.model)
    users = _ids_for(model.user_map_, args.users)
    cold = {}
    if args.user_features is not None:
        if getattr(model, "user_feature_encoding_", None) is None:
            raise CommandError(f"--user-features: {args.model} was trained without user "
                               "features")
        cold = {"user_features": read_features(args.user_features, "--user-features",
                                               model.user_map_.kind)}
    items, scores = model.recommend(users, n=args.n, exclude_seen=not args.include_seen,
                                    unknown=args.unknown, rank_by=args.rank_by, **cold)
    _write_ranked(["user", "rank", "item", "score"], users, items, scores)


def add_similar(commands):
    p = _ranked_command(commands, "similar", "ids", "item ids (user ids with --users)",
                        "similar ids per query", help="most similar items (or users), as CSV",
                        description="The N items whose factors have the highest cosine "
                        "similarity to each given item (with --users: users to users). "
                        "Writes CSV: query, rank, similar id, similarity.")
    p.add_argument("--users", action="store_true", help="similar users instead of items")
    p.set_defaults(func=run_similar)


def run_similar(args):
    model = load_fitted(args.model)
    kind = "user" if args.users else "item"
    ids = _ids_for(getattr(model, f"{kind}_map_"), args.ids)
    find = model.similar_users if args.users else model.similar_items
    similar, scores = find(ids, n=args.n)
    _write_ranked([kind, "rank", "similar", "similarity"], ids, similar, scores)


# --- info -------------------------------------------------------------------------------

def add_info(commands):
    p = commands.add_parser("info", help="what a model file holds")
    p.add_argument("model", help="model file")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=run_info)


def _describe(path, model):
    """What ``mfcore info`` reports about the model loaded from ``path``, as a dict."""
    info = {"file": path, "bytes": os.path.getsize(path),
            "fitted": hasattr(model, "user_factors_"), "params": model.get_params()}
    if info["fitted"]:
        history = model.history_
        info.update({
            "users": len(model.user_map_), "items": len(model.item_map_),
            "id_kind": model.user_map_.kind, "ratings_trained_on": model.n_ratings_,
            "factors": list(model.user_factors_.shape[1:]),
            "global_mean": model.global_mean_, "rating_range": list(model.rating_range_),
            "epochs_run": len(history), "best_epoch": model.best_epoch_,
            "last_train_rmse": history[-1].get("train_rmse") if history else None,
            "stop_reason": model.stop_reason_,
        })
    return info


def run_info(args):
    model = load(args.model)
    info = _describe(args.model, model)
    if args.json:
        print_json(info)
        return
    print(f"{args.model}: mfcore model, {info['bytes']:,} bytes, "
          f"{'fitted' if info['fitted'] else 'not fitted'}")
    if info["fitted"]:
        print(f"  {info['users']:,} users x {info['items']:,} items ({info['id_kind']} ids), "
              f"trained on {info['ratings_trained_on']:,} ratings")
        print(f"  global mean {info['global_mean']:.4f}, ratings {info['rating_range'][0]:g}.."
              f"{info['rating_range'][1]:g}, {info['epochs_run']} {model.epoch_word}"
              + (f", best epoch {info['best_epoch']}" if info["best_epoch"] else "")
              + (f", last train RMSE {info['last_train_rmse']:.4f}"
                 if info["last_train_rmse"] is not None else ""))
        if info["stop_reason"]:
            print(f"  training {info['stop_reason']}")
    print("  params: " + ", ".join(f"{k}={v!r}" for k, v in info["params"].items()))
