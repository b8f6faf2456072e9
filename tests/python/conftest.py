"""Shared fixtures of the Python tests.

swinrt_bin: the C++ `swinrt` command, $SWINRT_BIN or <repo>/build/release/swinrt.
swinrt_probe: tests/pipeline_probe.cpp's helper, $SWINRT_PROBE or next to
              swinrt_bin under tests/.
"""

import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The Python package, importable without `pip install -e .`.
if str(ROOT / "python") not in sys.path:
    sys.path.insert(0, str(ROOT / "python"))


def _executable(path, what, hint):
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"{what} not found at {path} ({hint})", pytrace=False)
    return str(path)


@pytest.fixture(scope="session")
def swinrt_bin():
    path = os.environ.get("SWINRT_BIN") or str(ROOT / "build" / "release" / "swinrt")
    return _executable(path, "the swinrt binary", "build it: cmake --preset release && cmake --build build/release, "
                       "or set SWINRT_BIN")


@pytest.fixture(scope="session")
def swinrt_probe(swinrt_bin):
    path = os.environ.get("SWINRT_PROBE") or str(pathlib.Path(swinrt_bin).parent / "tests" / "swinrt_pipeline_probe")
    return _executable(path, "swinrt_pipeline_probe", "built with the tests (SWINRT_TESTS=ON), or set SWINRT_PROBE")
