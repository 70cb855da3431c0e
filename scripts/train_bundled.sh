#!/usr/bin/env bash
# The exact commands that trained the bundled models on 2 CPU cores.
#   scripts/train_bundled.sh        v2 (default): 5-fold cross-validation, then all cases
#   VERSION=v1 scripts/train_bundled.sh   v1 (about 50 minutes)
# ARCH=unet OUT=var/train-unet BUNDLE=var/train-unet/unet.pt VERSION=v1 trains the U-Net baseline.
#
# Reporting (docs/model-lifecycle.md): with MAHTQA_URL and MAHTQA_TOKEN set, the training
# is one run on MAHT-QA: parameters, environment and dataset version at the start
# (DATA=version:ID names a registered dataset version), both networks' metrics every step
# (the coarse network's as train_loss, val_loss, lr, grad_norm, val_mre_mm; the fine
# network's prefixed fine/), and at the end the bundle registered as a model version of
# the run (MODEL_VERSION, default the bundle's version +run<ID>). A token without
# register_model registers only weights under the server's MAHTQA_MODEL_DIR. A failed
# step marks the run failed. Reporting never stops the training.
# Smoke knobs (the defaults are the recipe): COARSE_STEPS, FINE_STEPS, MAX_CASES, SIZE
# (v1), GRAD_EVERY (gradient monitor sampling; default 25 when reporting, else off).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/isbi2015-subset}
HAMEDAN=${HAMEDAN:-../shared/data/hamedan-dev}  # zero-shot evaluation only, never trained on
ARCH=${ARCH:-mahtnet}
PY=${PY:-.venv/bin/python}
VERSION=${VERSION:-v2}
TARGETS=${TARGETS:-mean}  # v2: "annotators" trains on one annotator at random per sample
COARSE_STEPS=${COARSE_STEPS:-1000}
FINE_STEPS=${FINE_STEPS:-2000}
CASES=()
[ -n "${MAX_CASES:-}" ] && CASES=(--max-cases "$MAX_CASES")

# --- The run on MAHT-QA (only with MAHTQA_URL and MAHTQA_TOKEN) ---------------------
MAHTQA_RUN_ID=""
if [ -n "${MAHTQA_URL:-}" ] && [ -n "${MAHTQA_TOKEN:-}" ]; then
  PARAMS=$(printf '{"script": "scripts/train_bundled.sh", "version": "%s", "arch": "%s",
    "coarse_steps": %d, "fine_steps": %d, "seed": 0, "size": "%s", "max_cases": "%s",
    "data": "%s"}' "$VERSION" "$ARCH" "$COARSE_STEPS" "$FINE_STEPS" \
    "${SIZE:-$([ "$VERSION" = v1 ] && echo base || echo small)}" "${MAX_CASES:-all}" "$DATA")
  MAHTQA_RUN_ID=$($PY -m mahtqa.reporting_runs start "${RUN_NAME:-$ARCH $VERSION (train_bundled.sh)}" \
      --params "$PARAMS" --data "$DATA" || true)
fi
export MAHTQA_RUN_ID
GRAD_EVERY=${GRAD_EVERY:-$([ -n "$MAHTQA_RUN_ID" ] && echo 25 || echo 0)}
finish_run() {  # finish_run STATUS [WEIGHTS VERSION]
  [ -n "$MAHTQA_RUN_ID" ] || return 0
  local args=(finish "$MAHTQA_RUN_ID" --status "$1")
  [ $# -ge 3 ] && args+=(--weights "$2" --model-name "$ARCH" --model-version "$3")
  [ "$1" = failed ] && args+=(--error "scripts/train_bundled.sh stopped (exit $CODE)")
  $PY -m mahtqa.reporting_runs "${args[@]}" || true
  MAHTQA_RUN_ID=""
}
CODE=0
trap 'CODE=$?; if [ "$CODE" -ne 0 ]; then finish_run failed; fi' EXIT
trap 'CODE=130; finish_run aborted; exit 130' INT TERM
# Both stages in the background: `wait PID` gives each one's exit status to set -e.
wait_all() { local pid; for pid in "$@"; do wait "$pid"; done; }

if [ "$VERSION" = v1 ]; then
  OUT=${OUT:-var/train}
  BUNDLE=${BUNDLE:-mahtqa/engine/bundled/mahtnet-v1.pt}
  mkdir -p "$OUT"
  # The two stages are independent: one process (one thread) each.
  $PY -m mahtqa.engine.train --data "$DATA" --out "$OUT" --arch "$ARCH" --stage coarse \
      --coarse-steps "$COARSE_STEPS" --seed 0 --loss ce --size "${SIZE:-base}" "${CASES[@]}" \
      --grad-monitor-every "$GRAD_EVERY" >"$OUT/coarse.log" 2>&1 &
  coarse=$!
  $PY -m mahtqa.engine.train --data "$DATA" --out "$OUT" --arch "$ARCH" --stage fine \
      --fine-steps "$FINE_STEPS" --seed 0 --loss mse --size "${SIZE:-base}" "${CASES[@]}" \
      --grad-monitor-every "$GRAD_EVERY" >"$OUT/fine.log" 2>&1 &
  wait_all "$coarse" $!
  $PY -m mahtqa.engine.train --data "$DATA" --out "$OUT" --arch "$ARCH" --stage finalize \
      --coarse-steps "$COARSE_STEPS" --fine-steps "$FINE_STEPS" --seed 0 --bundle "$BUNDLE" \
      "${CASES[@]}" --name "$ARCH" --version 1.0.0 | tee "$OUT/finalize.log"
  finish_run finished "$BUNDLE" "${MODEL_VERSION:-1.0.0+run$MAHTQA_RUN_ID}"
  exit 0
fi

# v2 (about 60 minutes): small networks, the robustness recipe. The run reports step 2
# (the networks that are bundled); the cross-validation's fold trainings are not reported.
CV=${CV:-var/crossval/v2}
OUT=${OUT:-var/train-v2}
BUNDLE=${BUNDLE:-mahtqa/engine/bundled/mahtnet-v2.pt}
mkdir -p "$CV" "$OUT"
# 1. Out-of-fold predictions for all 100 cases (10 stage trainings, 2 at a time), and
#    each fold model zero-shot on the second hospital.
$PY -m mahtqa.engine.crossval --data "$DATA" --out "$CV" --folds 5 --size small --recipe v2 \
    --coarse-steps "$COARSE_STEPS" --fine-steps "$FINE_STEPS" --hamedan "$HAMEDAN" \
    --targets "$TARGETS" | tee "$CV/report.json"
# 2. The same recipe on all 100 cases (one process per stage).
pids=()
for stage in coarse fine; do
  $PY -m mahtqa.engine.train --data "$DATA" --out "$OUT" --arch "$ARCH" --stage "$stage" \
      --coarse-steps "$COARSE_STEPS" --fine-steps "$FINE_STEPS" --seed 0 --size small \
      --recipe v2 --all-cases --loss ce --grad-monitor-every "$GRAD_EVERY" \
      --targets "$TARGETS" >"$OUT/$stage.log" 2>&1 &
  pids+=($!)
done
wait_all "${pids[@]}"
# 3. Error model and risk-controlled thresholds from the out-of-fold predictions; bundle.
$PY -m mahtqa.engine.bundle_v2 --data "$DATA" --work "$OUT" --crossval "$CV" \
    --bundle "$BUNDLE" --version 2.0.0 | tee "$OUT/bundle.log"
$PY -m mahtqa.engine.safety --oof "$CV/oof.json" --plots docs/img --out "$CV/safety.json"
# 4. The CPU runtime: both networks as ONNX beside the weights (needs requirements/dev.txt).
$PY -m mahtqa.engine.runtime --weights "$BUNDLE"
finish_run finished "$BUNDLE" "${MODEL_VERSION:-2.0.0+run$MAHTQA_RUN_ID}"
