"""Build of the optional compiled time loops (``skrnn.nn._fastrnn``), and the copy of
the built-in experiments into the wheel.

Everything else about the package is declared in ``pyproject.toml``. The extension
needs only a C compiler that knows GCC's vector extensions (gcc or clang) and
Python's headers: no NumPy headers, no BLAS. It is optional: when it cannot be
compiled (MSVC, no compiler), the install goes on and skrnn runs its pure-NumPy
engine, which is also the reference the tests compare it with.
"""

import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py


class build_py_with_pipelines(build_py):
    """Ship the repository's ``pipelines/*.toml`` as ``skrnn/pipelines`` in a wheel.

    ``pipelines/`` stays the experiments' home in the repository (the README and the
    notebooks cite it); a wheel needs them inside the package so that ``skrnn run
    default`` works from any directory. An editable install reads the repository's
    folder directly (skrnn/_bundled.py), so nothing is copied then.
    """

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "skrnn" / "pipelines"
        self.mkpath(str(target))
        for source in sorted(Path("pipelines").glob("*.toml")):
            self.copy_file(str(source), str(target / source.name))

if sys.platform == "win32":
    args = ["/O2"]
else:
    # -fno-trapping-math lets gcc turn the branch-free selects of the activations into
    # vector blends; -ffp-contract=fast fuses multiply-adds where the CPU has FMA (the
    # AVX2 and AVX-512 clones). Results are deterministic on a given machine.
    args = ["-O3", "-std=c99", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=fast"]

setup(
    cmdclass={"build_py": build_py_with_pipelines},
    ext_modules=[
        Extension(
            "skrnn.nn._fastrnn",
            sources=["skrnn/nn/csrc/fastrnn.c"],
            depends=["skrnn/nn/csrc/loops.h", "skrnn/nn/csrc/matmul.h",
                     "skrnn/nn/csrc/gates_avx512.h"],
            extra_compile_args=args,
            optional=True,
        )
    ]
)
