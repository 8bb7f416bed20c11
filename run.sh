#!/usr/bin/env bash
# The main job: `bash run.sh [video-lavit arguments]`. Without arguments it runs the default demo.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$ROOT/scripts/ensure_venv.sh"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
if [ "$#" -eq 0 ]; then
    set -- demo --out "$ROOT/outputs"
fi
exec "$ROOT/.venv/bin/video-lavit" "$@"
