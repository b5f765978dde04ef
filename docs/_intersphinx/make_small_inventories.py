"""Write numpy.inv and distributed.inv: the few NumPy and Distributed names mfcore's docs link to.

Run from this folder: ``python make_small_inventories.py``. Each entry is (name, role, page#anchor),
relative to the project's published documentation (see ``intersphinx_mapping`` in ``docs/conf.py``).
"""
import zlib

NUMPY = [
    ("numpy.ndarray", "py:class", "reference/generated/numpy.ndarray.html#numpy.ndarray"),
    ("numpy.dtype", "py:class", "reference/generated/numpy.dtype.html#numpy.dtype"),
    ("numpy.random.Generator", "py:class", "reference/random/generator.html#numpy.random.Generator"),
    ("numpy.float32", "py:class", "reference/arrays.scalars.html#numpy.float32"),
    ("numpy.float64", "py:class", "reference/arrays.scalars.html#numpy.float64"),
    ("numpy.int32", "py:class", "reference/arrays.scalars.html#numpy.int32"),
    ("numpy.int64", "py:class", "reference/arrays.scalars.html#numpy.int64"),
    ("numpy.typing.ArrayLike", "py:data", "reference/typing.html#numpy.typing.ArrayLike"),
    ("numpy.nan", "py:data", "reference/constants.html#numpy.nan"),
]
DISTRIBUTED = [
    ("distributed.Client", "py:class", "api.html#distributed.Client"),
    ("distributed.LocalCluster", "py:class", "api.html#distributed.LocalCluster"),
]


def write(path, project, version, entries):
    header = (f"# Sphinx inventory version 2\n# Project: {project}\n# Version: {version}\n"
              "# The remainder of this file is compressed using zlib.\n")
    body = "".join(f"{name} {role} 1 {uri} -\n" for name, role, uri in entries)
    with open(path, "wb") as fh:
        fh.write(header.encode() + zlib.compress(body.encode()))


if __name__ == "__main__":
    write("numpy.inv", "NumPy", "2", NUMPY)
    write("distributed.inv", "Distributed", "2024", DISTRIBUTED)
