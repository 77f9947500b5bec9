"""The version of the pysvdb package: the one place it is written.

pyproject.toml reads it at build time (scikit-build-core's regex metadata
provider), so the wheel's metadata and ``pysvdb.__version__`` cannot differ,
and a source checkout reports it without looking up installed metadata (which
could belong to another installed copy). It equals the release version of the
bundled libsvdb (CMakeLists.txt ``project(VERSION)``, ``svdb_version()``):
tests/python/test_wheel.py checks both.
"""

__version__ = "0.1.0"
