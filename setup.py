"""Build of the optional compiled time loops (``skrnn.nn._fastrnn``).

Everything else about the package is declared in ``pyproject.toml``. The extension
needs only a C compiler that knows GCC's vector extensions (gcc or clang) and
Python's headers: no NumPy headers, no BLAS. It is optional: when it cannot be
compiled (MSVC, no compiler), the install goes on and skrnn runs its pure-NumPy
engine, which is also the reference the tests compare it with.
"""

import sys

from setuptools import Extension, setup

if sys.platform == "win32":
    args = ["/O2"]
else:
    # -fno-trapping-math lets gcc turn the branch-free selects of the activations into
    # vector blends; -ffp-contract=fast fuses multiply-adds where the CPU has FMA (the
    # AVX2 and AVX-512 clones). Results are deterministic on a given machine.
    args = ["-O3", "-std=c99", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=fast"]

setup(
    ext_modules=[
        Extension(
            "skrnn.nn._fastrnn",
            sources=["skrnn/nn/_fastrnn.c"],
            depends=["skrnn/nn/_fastrnn_body.h", "skrnn/nn/_fastrnn_mm.h",
                     "skrnn/nn/_fastrnn_x16.h"],
            extra_compile_args=args,
            optional=True,
        )
    ]
)
