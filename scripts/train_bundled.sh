#!/usr/bin/env bash
# The exact commands that trained the bundled model (about 50 minutes on 2 CPU cores).
# ARCH=unet OUT=var/train-unet BUNDLE=var/train-unet/unet.pt trains the U-Net baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/isbi2015-subset}
ARCH=${ARCH:-mahtnet}
OUT=${OUT:-var/train}
BUNDLE=${BUNDLE:-mahtqa/engine/bundled/mahtnet-v1.pt}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
# The two stages are independent: one process (one thread) each.
$PY -m mahtqa.engine.train --data "$DATA" --out "$OUT" --arch "$ARCH" --stage coarse \
    --coarse-steps 1000 --seed 0 --loss ce >"$OUT/coarse.log" 2>&1 &
$PY -m mahtqa.engine.train --data "$DATA" --out "$OUT" --arch "$ARCH" --stage fine \
    --fine-steps 2000 --seed 0 --loss mse >"$OUT/fine.log" 2>&1 &
wait
$PY -m mahtqa.engine.train --data "$DATA" --out "$OUT" --arch "$ARCH" --stage finalize \
    --coarse-steps 1000 --fine-steps 2000 --seed 0 --bundle "$BUNDLE" \
    --name "$ARCH" --version 1.0.0 | tee "$OUT/finalize.log"
