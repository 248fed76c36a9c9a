#!/bin/bash
# Session 15: waits for runs/s14_chain.sh, then the pre-registered validation comparison
# (docs/experiments/2026-12-05-classifier-ssl-longer.md). With MEDSCAN_WEIGHTS_DIR set the
# registry reads only that folder, so the shipped member is copied there first (the first run,
# 02:17 UTC, lacked this copy and its ensemble step failed; flip, ensemble and comparison as below).
cd "$(dirname "$0")/.."
export MEDSCAN_WEIGHTS_DIR=data/weights
until grep -q "all done" runs/s14_chain.log; do sleep 30; done
SHIPPED=vgg16_bn-w0.5-96px-ssl-focus3-20261205
LF=vgg16_bn-w0.5-96px-ssl30-focus3-20261205
D=../shared/datasets/brain-mri/train
quiet() { grep -v -E "I0000|E0000|oneDNN"; }
test -d data/weights/classifier/$SHIPPED || cp -r weights/classifier/$SHIPPED data/weights/classifier/
echo "=== flip $(date -u +%H:%M)"
.venv/bin/python -m core calibrate classifier --data $D --model $LF --tta hflip \
  --as vgg16_bn-w0.5-96px-ssl30-focus3-flip-20261205 2>&1 | quiet
echo "=== ensemble $(date -u +%H:%M)"
.venv/bin/python -m core ensemble classifier --members $LF $SHIPPED --data $D \
  --version ens2-ssl30-focus3-20261205 --json 2>&1 | quiet
echo "=== compare $(date -u +%H:%M)"
.venv/bin/python scripts/compare_classifiers_val.py --data $D --gradcam-mass --by-source \
  $SHIPPED vgg16_bn-w0.5-96px-ssl30-20261205 $LF \
  vgg16_bn-w0.5-96px-ssl30-focus3-flip-20261205 ens2-ssl30-focus3-20261205 > runs/s14_compare.json 2> runs/s14_compare.err
echo "=== done $(date -u +%H:%M)"
