#!/bin/bash
# Reproduces the shipped classifier vgg16_bn-w0.5-96px-ssl-focus3-20261205 (issue 12): SimCLR
# pre-training, three supervised stages (64², 96², 96²), then six epochs with the background
# penalty. About 105 min on 2 CPU cores (38 + 15 + 12 + 25 + 13); under KERAS_BACKEND=jax on a
# GPU, minutes. Every stage checkpoints in runs/ (rerun a stage with --resume added). The new
# versions go to MEDSCAN_WEIGHTS_DIR (default data/weights), never to the shipped weights/.
# Data: the brain-mri, brain-mri-seg and brain-mri-hr folders (DATA, default ../shared/datasets).
#   bash scripts/train_classifier_shipped.sh [DATA]
# The same chain from the card: python -m core train classifier --data DIR --recipe-of vgg16_bn-w0.5-96px-ssl-focus3-20261205
set -euo pipefail
cd "$(dirname "$0")/.."
D=${1:-../shared/datasets}
export PYTHONPATH=. MEDSCAN_WEIGHTS_DIR=${MEDSCAN_WEIGHTS_DIR:-data/weights}
PY=${PYTHON:-.venv/bin/python}
T=${THREADS:-2}
$PY -m core pretrain classifier --data $D/brain-mri/train \
    --data $D/brain-mri-seg/images --data $D/brain-mri-hr/train \
    --hold-out-validation-of $D/brain-mri/train \
    --out runs/ssl/s11-64px.weights.h5 --input-size 64 --epochs 20 --batch-size 64 \
    --max-minutes 42 --threads $T --workers 1
C="--data $D/brain-mri/train --extra-data $D/brain-mri-seg/images
   --arch vgg16_bn --width 0.5 --augmentation strong --label-smoothing 0.1 --batch-size 32
   --lr-schedule cosine --threads $T --workers 1"
$PY -m core train classifier $C --warmup-epochs 1 --input-size 64 --epochs 14 --patience 14 \
    --lr 1e-3 --max-minutes 90 --init-from runs/ssl/s11-64px.weights.h5 --run-dir runs/s11_b64 \
    --no-publish
$PY -m core train classifier $C --warmup-epochs 1 --input-size 96 --epochs 6 --patience 6 \
    --lr 3e-4 --max-minutes 75 --init-from runs/s11_b64/best.weights.h5 --run-dir runs/s11_b96 \
    --no-publish
$PY -m core train classifier $C --warmup-epochs 1 --input-size 96 --epochs 12 --patience 12 \
    --lr 3e-4 --max-minutes 120 --init-from runs/s11_b96/best.weights.h5 \
    --run-dir runs/s11_bplus --version vgg16_bn-w0.5-96px-ssl-20261204
$PY -m core train classifier $C --warmup-epochs 0 --input-size 96 --epochs 6 --patience 6 \
    --lr 1e-4 --max-minutes 40 --init-from runs/s11_bplus/best.weights.h5 \
    --background-penalty 3 --run-dir runs/s12_focus_3 --version vgg16_bn-w0.5-96px-ssl-focus3-20261205
echo "then: python -m core evaluate classifier --data $D/brain-mri/test --model vgg16_bn-w0.5-96px-ssl-focus3-20261205 --gradcam-mass --json"
