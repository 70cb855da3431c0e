#!/usr/bin/env bash
# The exact commands that trained the bundled models on 2 CPU cores.
#   scripts/train_bundled.sh        v2 (default): 5-fold cross-validation, then all cases
#   VERSION=v1 scripts/train_bundled.sh   v1 (about 50 minutes)
# ARCH=unet OUT=var/train-unet BUNDLE=var/train-unet/unet.pt VERSION=v1 trains the U-Net baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/isbi2015-subset}
HAMEDAN=${HAMEDAN:-../shared/data/hamedan-dev}  # zero-shot evaluation only, never trained on
ARCH=${ARCH:-mahtnet}
PY=${PY:-.venv/bin/python}
VERSION=${VERSION:-v2}

if [ "$VERSION" = v1 ]; then
  OUT=${OUT:-var/train}
  BUNDLE=${BUNDLE:-mahtqa/engine/bundled/mahtnet-v1.pt}
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
  exit 0
fi

# v2 (about 60 minutes): small networks, the robustness recipe.
CV=${CV:-var/crossval/v2}
OUT=${OUT:-var/train-v2}
BUNDLE=${BUNDLE:-mahtqa/engine/bundled/mahtnet-v2.pt}
mkdir -p "$CV" "$OUT"
# 1. Out-of-fold predictions for all 100 cases (10 stage trainings, 2 at a time), and
#    each fold model zero-shot on the second hospital.
$PY -m mahtqa.engine.crossval --data "$DATA" --out "$CV" --folds 5 --size small --recipe v2 \
    --coarse-steps 1000 --fine-steps 2000 --hamedan "$HAMEDAN" | tee "$CV/report.json"
# 2. The same recipe on all 100 cases (one process per stage).
for stage in coarse fine; do
  $PY -m mahtqa.engine.train --data "$DATA" --out "$OUT" --arch "$ARCH" --stage "$stage" \
      --coarse-steps 1000 --fine-steps 2000 --seed 0 --size small --recipe v2 --all-cases \
      --loss ce >"$OUT/$stage.log" 2>&1 &
done
wait
# 3. Error model and risk-controlled thresholds from the out-of-fold predictions; bundle.
$PY -m mahtqa.engine.bundle_v2 --data "$DATA" --work "$OUT" --crossval "$CV" \
    --bundle "$BUNDLE" --version 2.0.0 | tee "$OUT/bundle.log"
$PY -m mahtqa.engine.safety --oof "$CV/oof.json" --plots docs/img --out "$CV/safety.json"
# 4. The CPU runtime: both networks as ONNX beside the weights (needs requirements/dev.txt).
$PY -m mahtqa.engine.runtime --weights "$BUNDLE"
