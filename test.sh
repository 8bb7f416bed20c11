#!/usr/bin/env bash
# The test suite: `bash test.sh [pytest arguments]`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$ROOT/scripts/ensure_venv.sh"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest -q "$@"
