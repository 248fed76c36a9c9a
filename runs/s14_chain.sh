#!/bin/bash
# Session 14: the shipped recipe with a longer SimCLR pre-training (30 epochs instead of 20);
# pre-registered in docs/experiments/2026-12-05-classifier-ssl-longer.md
set -e
cd /work/main
export MEDSCAN_WEIGHTS_DIR=data/weights
F="grep --line-buffered -v -E I0000|E0000|instructions|oneDNN|WARNING|step [0-9]+/[0-9]+ loss"
echo "=== pretrain $(date -u +%H:%M)"
.venv/bin/python -m core pretrain classifier --data ../shared/datasets/brain-mri/train \
    --data ../shared/datasets/brain-mri-seg/images --data ../shared/datasets/brain-mri-hr/train \
    --hold-out-validation-of ../shared/datasets/brain-mri/train \
    --out runs/ssl/s14-64px-e30.weights.h5 --input-size 64 --epochs 30 --batch-size 64 \
    --max-minutes 66 --threads 2 --workers 1 --overwrite 2>&1 | grep --line-buffered -v -E "I0000|E0000|instructions|oneDNN"
C="--data ../shared/datasets/brain-mri/train --extra-data ../shared/datasets/brain-mri-seg/images --arch vgg16_bn --width 0.5 --augmentation strong --label-smoothing 0.1 --batch-size 32 --lr-schedule cosine --threads 2 --workers 1"
echo "=== stage 1 $(date -u +%H:%M)"
.venv/bin/python -m core train classifier $C --warmup-epochs 1 --input-size 64 --epochs 14 --patience 14 --lr 1e-3 \
    --max-minutes 22 --init-from runs/ssl/s14-64px-e30.weights.h5 --run-dir runs/s14_b64 --no-publish 2>&1 | grep --line-buffered -v -E "I0000|E0000|instructions|oneDNN|WARNING|step [0-9]+/[0-9]+ loss"
echo "=== stage 2 $(date -u +%H:%M)"
.venv/bin/python -m core train classifier $C --warmup-epochs 1 --input-size 96 --epochs 6 --patience 6 --lr 3e-4 \
    --max-minutes 18 --init-from runs/s14_b64/best.weights.h5 --run-dir runs/s14_b96 --no-publish 2>&1 | grep --line-buffered -v -E "I0000|E0000|instructions|oneDNN|WARNING|step [0-9]+/[0-9]+ loss"
echo "=== stage 3 $(date -u +%H:%M)"
.venv/bin/python -m core train classifier $C --warmup-epochs 1 --input-size 96 --epochs 12 --patience 12 --lr 3e-4 \
    --max-minutes 32 --init-from runs/s14_b96/best.weights.h5 --run-dir runs/s14_bplus \
    --version vgg16_bn-w0.5-96px-ssl30-20261205 2>&1 | grep --line-buffered -v -E "I0000|E0000|instructions|oneDNN|WARNING|step [0-9]+/[0-9]+ loss"
echo "=== focus $(date -u +%H:%M)"
.venv/bin/python -m core train classifier $C --warmup-epochs 0 --input-size 96 --epochs 6 --patience 6 --lr 1e-4 \
    --max-minutes 22 --init-from runs/s14_bplus/best.weights.h5 --background-penalty 3 --run-dir runs/s14_focus \
    --version vgg16_bn-w0.5-96px-ssl30-focus3-20261205 2>&1 | grep --line-buffered -v -E "I0000|E0000|instructions|oneDNN|WARNING|step [0-9]+/[0-9]+ loss"
echo "=== all done $(date -u +%H:%M)"
