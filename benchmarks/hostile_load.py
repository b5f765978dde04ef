"""Peak memory and wall time of ``mfcore.load`` on hostile model files of a few KB.

    python benchmarks/hostile_load.py

For every compression method ``zipfile`` has, a model file whose member inflates to
hundreds of MiB (its .npy header honestly declaring 2 GiB), the same with a central
directory that lies about the member's size, and a stored member whose header declares
2 GiB it does not hold. Each is loaded in a fresh process (``ModelFileError`` expected);
printed: the file's size, the wall time of ``load``, the process's peak RSS above that of a
process that imported mfcore and loaded nothing, and the peak allocation tracemalloc saw.
The target (issue 20): under ~100 MB and 1 s each. The mutation corpus (flipped bytes,
replaced, dropped or compressed members...) is measured by ``benchmarks/fuzz.py --target
models``, which reports the slowest load and the largest peak allocation.
"""
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

METHODS = {name: getattr(zipfile, name) for name in ("ZIP_STORED", "ZIP_DEFLATED", "ZIP_BZIP2",
                                                     "ZIP_LZMA", "ZIP_ZSTANDARD")
           if hasattr(zipfile, name)}
#: zeros after the header: as many as keep each file within a few KB (deflate stops at ~1000:1)
PAYLOAD = {"ZIP_DEFLATED": 8 << 20, "ZIP_LZMA": 32 << 20}
DEFAULT_PAYLOAD = 256 << 20

MEASURE = r"""
import json, resource, sys, time, tracemalloc
import mfcore

def peak_kb():  # VmHWM: this process's own peak (ru_maxrss keeps the parent's across exec)
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

before = peak_kb()
outcome = "nothing loaded"
if sys.argv[1] != "-":
    tracemalloc.start()
    start = time.perf_counter()
    try:
        mfcore.load(sys.argv[1])
        outcome = "LOADED"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {str(exc)[:110]}"
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
else:
    seconds = peak = 0
print(json.dumps({"rss_kb": peak_kb(),
                  "before_kb": before, "seconds": seconds, "peak": peak, "outcome": outcome}))
"""


def _header(shape):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False,
                                                  "shape": shape})
    return buffer.getvalue()


def bomb(path, method, payload, lie=False):
    """A model file whose 'format.npy' member is compressed with ``method``: a header
    declaring 2 GiB, then ``payload`` zero bytes (written in pieces, never held whole)."""
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("format.npy")
        info.compress_type = method
        with archive.open(info, "w", force_zip64=True) as member:
            member.write(_header((2**31,)))
            for _ in range(payload >> 20):
                member.write(bytes(1 << 20))
        if lie:
            archive.filelist[-1].file_size = 200


def stored_liar(path):
    """A stored member whose header declares 2 GiB but which holds 64 bytes."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("format.npy", _header((2**31,)) + bytes(64))


def measure(path):
    result = subprocess.run([sys.executable, "-c", MEASURE, path], capture_output=True,
                            text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    baseline = measure("-")["rss_kb"]
    print(f"baseline: a process that imported mfcore peaks at {baseline / 1024:.0f} MB RSS")
    print(f"{'file':<28} {'size':>8} {'load s':>7} {'RSS +MB':>8} {'traced MB':>9}  outcome")
    with tempfile.TemporaryDirectory() as folder:
        cases = []
        for name, method in METHODS.items():
            payload = PAYLOAD.get(name, DEFAULT_PAYLOAD)
            if method != zipfile.ZIP_STORED:
                cases.append((f"{name[4:].lower()} bomb", bomb, (method, payload)))
                cases.append((f"{name[4:].lower()} bomb, lying", bomb, (method, payload, True)))
        cases.append(("stored, header lies", stored_liar, ()))
        for label, make, args in cases:
            path = os.path.join(folder, label.replace(" ", "_").replace(",", "") + ".mfz")
            make(path, *args)
            got = measure(path)
            print(f"{label:<28} {os.path.getsize(path):>8,} {got['seconds']:>7.3f} "
                  f"{(got['rss_kb'] - baseline) / 1024:>8.1f} {got['peak'] / 2**20:>9.2f}  "
                  f"{got['outcome']}")


if __name__ == "__main__":
    main()
