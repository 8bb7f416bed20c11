import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("VIDEO_LAVIT_SHARED", REPO_ROOT.parent / "shared"))
FIXTURES = SHARED / "parity" / "fixtures"
RELEASED_KEYS = SHARED / "parity" / "released_keys"
TESTDATA = SHARED / "testdata"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test, excluded by default (run with -m slow)")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"parity fixtures not found at {FIXTURES}; set VIDEO_LAVIT_SHARED")
    return FIXTURES


@pytest.fixture(scope="session")
def released_keys_dir() -> Path:
    return RELEASED_KEYS


@pytest.fixture(scope="session")
def testdata_dir() -> Path:
    if not TESTDATA.is_dir():
        pytest.fail(f"test media not found at {TESTDATA}; set VIDEO_LAVIT_SHARED")
    return TESTDATA
