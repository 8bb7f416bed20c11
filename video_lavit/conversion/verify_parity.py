"""Reproduce the original implementation's recorded outputs through our conversion code.

Usage::

    python -m video_lavit.conversion.verify_parity DIR [--media-dir DIR] [--released-keys FILE ...]
        [--only NAME ...]

Runs every fixture ``DIR/<name>.json`` (and every ``--released-keys`` file), prints one line per fixture with
PASS/FAIL and the largest difference, ends with ``N passed, M failed`` and exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import json
import sys
import time
import traceback
from pathlib import Path

from .parity import FIXTURE_CHECKS, RELEASED_KEY_CHECKS
from .parity.common import Comparison, Fixture


def _resolve(table: dict[str, str], name: str):
    for pattern, target in table.items():
        if fnmatch.fnmatchcase(name, pattern):
            module_name, func_name = target.split(":")
            module = importlib.import_module(f"{__package__}.parity.{module_name}")
            return getattr(module, func_name)
    raise LookupError(f"no parity check is known for {name!r}")


def _summarise(label: str, results: list[Comparison], seconds: float) -> bool:
    passed = bool(results) and all(r.passed for r in results)
    finite = [r.max_diff for r in results if r.max_diff == r.max_diff]
    worst = max(finite) if finite else float("nan")
    print(f"{'PASS' if passed else 'FAIL'} {label}: max diff {worst:.3g} ({len(results)} checks, {seconds:.1f}s)")
    for r in results:
        if not r.passed:
            print(f"    FAIL {r.name}: max diff {r.max_diff:.3g} {r.detail}")
    if not results:
        print("    FAIL: the check compared nothing")
    return passed


def run_fixture(json_path: Path, media_dir: Path | None, verbose: bool = False) -> bool:
    start = time.perf_counter()
    try:
        check = _resolve(FIXTURE_CHECKS, json_path.stem)
        results = check(Fixture.load(json_path), media_dir)
    except Exception as error:  # a crash is a failure of this fixture, not of the whole run
        results = [Comparison(json_path.stem, False, float("nan"), f"{type(error).__name__}: {error}")]
        if verbose:
            traceback.print_exc()
    return _summarise(json_path.stem, results, time.perf_counter() - start)


def run_released_keys(path: Path, verbose: bool = False) -> bool:
    start = time.perf_counter()
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
        keys = {name: tuple(shape) for name, shape in info["keys"]}
        if len(keys) != len(info["keys"]):
            raise ValueError(f"{path} lists a key twice")
        check = _resolve(RELEASED_KEY_CHECKS, path.stem)
        results = check(keys, info)
    except Exception as error:
        results = [Comparison(path.stem, False, float("nan"), f"{type(error).__name__}: {error}")]
        if verbose:
            traceback.print_exc()
    return _summarise(f"released_keys/{path.name}", results, time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fixture_dir", type=Path, nargs="?", help="folder holding <component>.json fixtures")
    parser.add_argument("--media-dir", type=Path, default=None, help="where videos named by fixtures are found")
    parser.add_argument("--released-keys", type=Path, action="append", default=[], help="a released_keys JSON file")
    parser.add_argument("--only", action="append", default=[], help="run only fixtures matching this glob")
    parser.add_argument("--verbose", "-v", action="store_true", help="print tracebacks of crashing checks")
    args = parser.parse_args(argv)
    if args.fixture_dir is None and not args.released_keys:
        parser.error("give a fixture folder, --released-keys FILE, or both")

    outcomes = []
    if args.fixture_dir is not None:
        if not args.fixture_dir.is_dir():
            parser.error(f"fixture folder {args.fixture_dir} does not exist")
        fixtures = sorted(args.fixture_dir.glob("*.json"))
        if args.only:
            fixtures = [p for p in fixtures if any(fnmatch.fnmatchcase(p.stem, g) for g in args.only)]
        if not fixtures:
            parser.error(f"no fixture JSON found in {args.fixture_dir}")
        outcomes += [run_fixture(p, args.media_dir, args.verbose) for p in fixtures]
    for path in args.released_keys:
        outcomes.append(run_released_keys(path, args.verbose))

    n_pass = sum(outcomes)
    print(f"{n_pass} passed, {len(outcomes) - n_pass} failed")
    return 0 if n_pass == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
