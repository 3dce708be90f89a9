"""Build hook for the optional C accelerator; all metadata lives in pyproject.toml.

``optional=True``: when no compiler is available the build goes on and
``trio_ws.sansio.masking`` falls back to its pure-Python implementation.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("trio_ws._speedups", ["trio_ws/_speedups.c"], optional=True),
    ],
)
