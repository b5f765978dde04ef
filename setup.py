"""Build the mfcore extension modules.

OpenMP is probed at build time: when the compiler accepts it the kernels run
in parallel, otherwise they build and run single-threaded and
``mfcore.openmp_enabled()`` reports False.

Environment switches (all opt-in, for local builds only):
  MFCORE_NATIVE=1      add -march=native (the result will not run on older CPUs)
  MFCORE_NO_OPENMP=1   build without OpenMP even when it is available
  MFCORE_ANNOTATE=1    write Cython's HTML annotation next to each .pyx
"""
import glob
import os
import sys
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

#: The compiled kernels, each ``mfcore/_kernels/<name>.pyx`` (with the headers beside it).
MODULES = ["simd", "sgd", "predict", "openmp", "recommend", "readers", "rowsolve", "bayes",
           "bayes_features", "ials", "layout"]


def _flag(name):
    return os.environ.get(name, "").strip() not in ("", "0", "false", "no")


def _compiles_with(compiler, compile_args, link_args):
    """True if a tiny OpenMP program compiles and links with these flags."""
    source = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as fh:
            fh.write(source)
        try:
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=compile_args)
            compiler.link_executable(objects, os.path.join(tmp, "probe"), extra_postargs=link_args)
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:   # pip and build run build_ext without -j: compile the modules side by side
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        # -g0 after Python's own -g: no debug sections, which were four fifths of each module
        ctype = self.compiler.compiler_type
        if ctype == "msvc":
            base, omp_compile, omp_link = ["/O2"], ["/openmp"], []
        elif sys.platform == "darwin":
            # Apple's clang has no OpenMP runtime of its own: the preprocessor flag plus LLVM's libomp
            # (headers and library found through CFLAGS/LDFLAGS, see tools/build_libomp_macos.sh)
            base, omp_compile, omp_link = ["-O3", "-g0"], ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
        else:
            base, omp_compile, omp_link = ["-O3", "-g0"], ["-fopenmp"], ["-fopenmp"]
            if _flag("MFCORE_NATIVE"):
                base.append("-march=native")
        use_openmp = not _flag("MFCORE_NO_OPENMP") and _compiles_with(self.compiler, omp_compile, omp_link)
        print(f"mfcore: building with OpenMP={'yes' if use_openmp else 'no'}", file=sys.stderr)
        for ext in self.extensions:
            ext.extra_compile_args = base + (omp_compile if use_openmp else [])
            ext.extra_link_args = omp_link if use_openmp else []
        super().build_extensions()


extensions = [
    Extension(
        f"mfcore._kernels.{name}",
        [f"mfcore/_kernels/{name}.pyx"],
        include_dirs=[np.get_include(), "mfcore/_kernels"],
        depends=glob.glob("mfcore/_kernels/*.h"),
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        annotate=_flag("MFCORE_ANNOTATE"),
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
    cmdclass={"build_ext": BuildExt},
)
