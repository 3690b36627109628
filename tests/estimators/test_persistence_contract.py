"""What a model file records and how a refusal names it (mutation testing found these
unchecked; ``tests/estimators/test_persistence.py`` holds the round trips and the trust policy)."""

import datetime
import io
import json
import zipfile

import numpy as np
import pytest
from skops import io as skops_io

from skrnn import GRURegressor, persistence
from skrnn.persistence import IncompatibleVersionError, UntrustedTypesError

rng = np.random.RandomState(0)
X = rng.normal(size=(30, 5))
Y = X[:, -1]


def _fit():
    return GRURegressor(units=3, max_iter=2, random_state=0).fit(X, Y)


def _with_metadata(data, metadata):
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            content = src.read(item.filename)
            if item.filename == persistence.METADATA_ENTRY:
                content = json.dumps(metadata).encode()
            dst.writestr(item.filename, content)
    return out.getvalue()


def test_metadata_records_versions_class_and_time():
    meta = persistence.read_metadata(persistence.dumps(_fit()))
    assert meta["estimator"] == "skrnn.recurrent.GRURegressor"
    assert meta["format_version"] == persistence.FORMAT_VERSION
    assert set(meta) >= {"skrnn_version", "sklearn_version", "numpy_version", "skops_version"}
    created = datetime.datetime.fromisoformat(meta["created"])
    assert abs(datetime.datetime.now(datetime.timezone.utc) - created).total_seconds() < 600


def test_save_creates_missing_parent_folders(tmp_path):
    path = persistence.save(_fit(), tmp_path / "a" / "b" / "model.skops")
    assert path.exists() and persistence.load(path).n_iter_ == 2


@pytest.mark.parametrize("how, name", [
    ("path", "Model file '{path}'"), ("bytes", "This model data"),
    ("file object", "This model file"),
])
def test_refusals_name_what_was_given(tmp_path, how, name):
    data = skops_io.dumps({"f": __import__("os").system})
    path = tmp_path / "evil.skops"
    path.write_bytes(data)
    source = {"path": path, "bytes": data, "file object": io.BytesIO(data)}[how]
    with pytest.raises(UntrustedTypesError) as info:
        persistence.load(source, check_version=False)
    assert str(info.value).startswith(
        name.format(path=path) + " refers to types that skrnn does not trust: ['posix.system'].")
    assert "Nothing was loaded. If you wrote this file and have reviewed these types, pass " \
           "them explicitly: load(path, trusted=[...])." in str(info.value)
    newer = tmp_path / "newer.skops"
    data = persistence.dumps(_fit())
    meta = persistence.read_metadata(data)
    newer.write_bytes(_with_metadata(data, {**meta, "skrnn_version": "999.0.0"}))
    with pytest.raises(IncompatibleVersionError, match=rf"^Model file '{newer}' was saved by "
                                                       r"skrnn 999\.0\.0"):
        persistence.load(newer)


def test_dumps_refusal_names_the_estimator():
    model = _fit()
    model.extra_ = __import__("os").system  # something only a crafted object would hold
    with pytest.raises(UntrustedTypesError, match=r"^This GRURegressor refers to types"):
        persistence.dumps(model)


def test_version_opt_out_is_spelled_as_the_parameter():
    data = skops_io.dumps(persistence.strip_training_state(_fit()))
    with pytest.raises(IncompatibleVersionError, match="check_version=False to load it anyway"):
        persistence.load(data)


@pytest.mark.parametrize("name, trusted", [
    ("skrnn.recurrent.GRURegressor", True),
    ("skrnn.__main__.main", False),
    ("numpy.__version__", False),
])
def test_dunder_modules_are_refused(name, trusted):
    assert persistence.is_trusted_type(name) is trusted
