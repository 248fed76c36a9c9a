#!/bin/bash
# Waits for runs/s14_chain.sh, then the pre-registered validation comparison
cd /work/main
export MEDSCAN_WEIGHTS_DIR=data/weights

LF=vgg16_bn-w0.5-96px-ssl30-focus3-20261205
F="grep -v -E I0000|E0000|instructions|oneDNN|WARNING"
D=../shared/datasets/brain-mri/train


echo "=== ensemble $(date -u +%H:%M)"
.venv/bin/python -m core ensemble classifier --members $LF vgg16_bn-w0.5-96px-ssl-focus3-20261205 --data $D --version ens2-ssl30-focus3-20261205 --json 2>&1 | grep -v -E "I0000|E0000|oneDNN"
echo "=== compare $(date -u +%H:%M)"
.venv/bin/python scripts/compare_classifiers_val.py --data $D --gradcam-mass --by-source \
  vgg16_bn-w0.5-96px-ssl-focus3-20261205 vgg16_bn-w0.5-96px-ssl30-20261205 $LF \
  vgg16_bn-w0.5-96px-ssl30-focus3-flip-20261205 ens2-ssl30-focus3-20261205 > runs/s14_compare.json 2> runs/s14_compare.err
echo "=== done $(date -u +%H:%M)"
