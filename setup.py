"""Build of the optional C extension; everything else is declared in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "consentry.replica._rows",
            ["src/consentry/replica/_rows.c"],
            extra_compile_args=["-O2"],
            # Without a C compiler the install goes on and consentry uses the pure-Python rows.
            optional=True,
        )
    ]
)
