"""Data sets: the synthetic generator and MovieLens fetch/cache/checksum (offline, file:// URLs)."""
import numpy as np
import pytest

from mfcore import datasets
from mfcore.errors import DataUnavailableError

pd = pytest.importorskip("pandas")


# --- synthetic ---------------------------------------------------------------------

def test_synthetic_preset_has_the_exact_shape_and_dtypes():
    df = datasets.synthetic("ml-100k", seed=1)
    assert list(df.columns) == ["user", "item", "rating"]
    assert [str(t) for t in df.dtypes] == ["int32", "int32", "float32"]
    assert len(df) == 100_000
    assert df["user"].nunique() == 943 and df["item"].nunique() == 1_682
    assert df["user"].min() == 1 and df["user"].max() == 943
    assert df["item"].min() == 1 and df["item"].max() == 1_682


def test_synthetic_rows_are_valid_and_realistic():
    df = datasets.synthetic(n_users=300, n_items=200, n_ratings=12_000, min_per_user=5, seed=3)
    assert not df.duplicated(["user", "item"]).any()
    per_user = df.groupby("user").size()
    assert per_user.min() >= 5 and len(per_user) == 300
    assert df.groupby("item").size().min() >= 1 and df["item"].nunique() == 200
    assert per_user.max() > 3 * per_user.median()          # power-law activity: heavy users
    assert set(np.unique(df["rating"])) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert 3.2 < df["rating"].mean() < 3.8
    assert df["user"].is_monotonic_increasing


def test_synthetic_is_reproducible_with_a_seed():
    a = datasets.synthetic("ml-100k", seed=7)
    b = datasets.synthetic("ml-100k", seed=7)
    c = datasets.synthetic("ml-100k", seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_synthetic_truth_explains_the_ratings():
    df, truth = datasets.synthetic(n_users=400, n_items=300, n_ratings=20_000, noise=0.3,
                                   seed=0, return_truth=True)
    u, i = df["user"].to_numpy() - 1, df["item"].to_numpy() - 1
    score = (truth["global_mean"] + truth["user_bias"][u] + truth["item_bias"][i]
             + np.einsum("nk,nk->n", truth["user_factors"][u], truth["item_factors"][i]))
    np.testing.assert_allclose(score, truth["expected"], rtol=1e-5, atol=1e-5)
    residual = df["rating"].to_numpy() - np.clip(score, 1, 5)
    # noise 0.3 plus rounding (uniform, sd 0.29) gives an RMSE near 0.42
    assert 0.3 < np.sqrt(np.mean(residual ** 2)) < 0.5
    assert np.corrcoef(score, df["rating"])[0, 1] > 0.8


@pytest.mark.parametrize("kwargs, match", [
    ({"preset": "ml-30m"}, "unknown preset"),
    ({"n_users": 0}, "n_users"),
    ({"n_ratings": 10, "n_users": 5, "n_items": 50, "min_per_user": 3}, "fewer than n_users"),
    ({"n_ratings": 100, "n_users": 5, "n_items": 200}, "fewer than n_items"),
    ({"n_ratings": 1000, "n_users": 10, "n_items": 100}, "more than 60%"),
    ({"k": 0}, "k must be"),
    ({"noise": -1.0}, "noise"),
    ({"n_items": 2.5}, "n_items"),
])
def test_synthetic_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        datasets.synthetic(**kwargs)


# --- MovieLens: local copy, cache, download from a file:// URL --------------------------

U_DATA = "".join(f"{u}\t{i}\t{(u + i) % 5 + 1}\t{880000000 + n}\n"
                 for n, (u, i) in enumerate((u, i) for u in range(1, 21) for i in range(1, 6)))


@pytest.fixture
def no_real_data(tmp_path, monkeypatch):
    """An empty cache and no $MFCORE_DATA, so every lookup must download."""
    monkeypatch.delenv("MFCORE_DATA", raising=False)
    monkeypatch.setenv("MFCORE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def make_archive(path, text=U_DATA, folder="ml-100k"):
    import zipfile
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{folder}/u.data", text)
        archive.writestr(f"{folder}/README", "test archive")
    return path


def sha256_of(path):
    import hashlib
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_download_verifies_and_unpacks_into_the_cache(tmp_path, no_real_data):
    archive = make_archive(tmp_path / "ml-100k.zip")
    messages = []
    path = datasets.movielens_path("ml-100k", url=archive.as_uri(), sha256=sha256_of(archive),
                                   progress=messages.append)
    assert path == str(no_real_data / "ml-100k" / "u.data")
    assert open(path).read() == U_DATA
    assert messages and "downloading" in messages[0]
    assert sorted(p.name for p in no_real_data.iterdir()) == ["ml-100k"]  # no temporary left
    # second call: found in the cache, nothing downloaded (a bad URL would fail otherwise)
    assert datasets.movielens_path("100k", url="file:///nonexistent.zip") == path
    frame = datasets.movielens("ml-100k", verify=False)
    assert len(frame) == 100 and list(frame.columns) == ["user", "item", "rating", "timestamp"]
    with pytest.raises(ValueError, match="holds 100 ratings but MovieLens ml-100k has 100,000"):
        datasets.movielens("ml-100k")


def test_corrupted_download_is_refused_and_nothing_is_kept(tmp_path, no_real_data):
    archive = make_archive(tmp_path / "ml-100k.zip")
    good = sha256_of(archive)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(DataUnavailableError, match="failed its check"):
        datasets.movielens_path("ml-100k", url=archive.as_uri(), sha256=good)
    assert not no_real_data.exists() or list(no_real_data.iterdir()) == []
    # the official digest is checked by default: this test archive is not the real one
    make_archive(archive)
    with pytest.raises(DataUnavailableError, match="expected 50d2a982"):
        datasets.movielens_path("ml-100k", url=archive.as_uri())


def test_bad_archives_and_unreachable_urls(tmp_path, no_real_data):
    not_zip = tmp_path / "x.zip"
    not_zip.write_bytes(b"this is not a zip archive")
    with pytest.raises(DataUnavailableError, match="not a valid zip"), \
            pytest.warns(UserWarning, match="no published SHA-256"):
        datasets.movielens_path("ml-100k", url=not_zip.as_uri(), sha256=None)
    wrong = make_archive(tmp_path / "wrong.zip", folder="ml-1m")
    with pytest.raises(DataUnavailableError, match="no ml-100k/u.data"):
        datasets.movielens_path("ml-100k", url=wrong.as_uri(), sha256=sha256_of(wrong))
    with pytest.raises(DataUnavailableError, match="cannot download"):
        datasets.movielens_path("ml-100k", url=(tmp_path / "missing.zip").as_uri())
    with pytest.raises(DataUnavailableError, match="download=False"):
        datasets.movielens_path("ml-100k", download=False)
    with pytest.raises(ValueError, match="unknown MovieLens set"):
        datasets.movielens_path("ml-5k")
    assert not no_real_data.exists() or list(no_real_data.iterdir()) == []


def test_unsafe_archive_paths_are_refused(tmp_path, no_real_data):
    import zipfile
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ml-100k/u.data", U_DATA)
        z.writestr("../escape.txt", "x")
    with pytest.raises(DataUnavailableError, match="unsafe path"), \
            pytest.warns(UserWarning, match="no published SHA-256"):
        datasets.movielens_path("ml-100k", url=archive.as_uri(), sha256=None)
    assert not (tmp_path / "escape.txt").exists()


def test_mfcore_data_comes_first(tmp_path, monkeypatch):
    root = tmp_path / "data"
    (root / "ml-1m").mkdir(parents=True)
    (root / "ml-1m" / "ratings.dat").write_text("1::1193::5::978300760\n")
    monkeypatch.setenv("MFCORE_DATA", str(root))
    monkeypatch.setenv("MFCORE_CACHE", str(tmp_path / "cache"))
    assert datasets.movielens_path("1m", download=False) == str(root / "ml-1m" / "ratings.dat")
    assert len(datasets.movielens("ml-1m", verify=False, download=False)) == 1


def test_real_movielens_100k_by_name(ml100k):
    ml100k("u.data")  # skips when absent
    frame = datasets.movielens("ml-100k", download=False)
    assert len(frame) == 100_000 and frame["user"].nunique() == 943


def test_movielens_side_tables_by_file_name(tmp_path, monkeypatch):
    root = tmp_path / "data" / "ml-1m"
    root.mkdir(parents=True)
    (root / "ratings.dat").write_text("1::1193::5::978300760\n")
    (root / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    (root / "movies.dat").write_bytes("1193::One Flew (1975)::Drama\n2::Caf\xe9 (no year)::"
                                      "Comedy|Romance\n".encode("latin-1"))
    monkeypatch.setenv("MFCORE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MFCORE_CACHE", str(tmp_path / "cache"))
    users, items = datasets.movielens_features("ml-1m", download=False)
    assert users.loc[2].tolist() == ["M", "56", "16", "7"]
    assert items.loc[2, "genres"] == "Comedy|Romance" and items.loc[2, "year"] == 1975.0
    with pytest.raises(ValueError, match="not a MovieLens side file"):
        datasets.read_movielens_side(str(root / "ratings.dat"))


def test_real_movielens_100k_side_tables(ml100k):
    ml100k("u.user")  # skips when absent
    users, items = datasets.movielens_features("ml-100k", download=False)
    assert users.shape == (943, 4) and items.shape == (1682, 2)
    assert items.loc[1, "genres"] == "Animation|Children's|Comedy"


def test_unwritable_cache_is_reported(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.delenv("MFCORE_DATA", raising=False)
    monkeypatch.setenv("MFCORE_CACHE", str(blocker / "cache"))
    archive = make_archive(tmp_path / "ml-100k.zip")
    with pytest.raises(DataUnavailableError, match="cannot write to the cache folder"):
        datasets.movielens_path("ml-100k", url=archive.as_uri(), sha256=sha256_of(archive))
