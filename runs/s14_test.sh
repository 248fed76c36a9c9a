#!/bin/bash
# The pre-registered single test look of the pick (recorded in its card in data/weights)
cd "$(dirname "$0")/.."
export MEDSCAN_WEIGHTS_DIR=data/weights
test -e runs/s14_test.json && { echo "already looked: runs/s14_test.json"; exit 1; }
.venv/bin/python -m core evaluate classifier --data ../shared/datasets/brain-mri/test --model "$1" \
  --gradcam-mass --record test --json --quiet > runs/s14_test.json 2> runs/s14_test.err
.venv/bin/python -c "
import json; r=json.load(open('runs/s14_test.json'))
print({k: r.get(k) for k in ['accuracy','accuracy_ci95','macro_f1','macro_f1_ci95','ece','ece_ci95','nll','gradcam_outside_head','confusion_matrix']})
print('right', round(r['accuracy']*r['n']), 'of', r['n'])"
