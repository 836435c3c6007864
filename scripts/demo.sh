#!/usr/bin/env bash
# make demo: the main job on a model the project makes itself (or the MODEL given).
#   scripts/demo.sh [MODEL] [BOARD] [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-}
BOARD=${2:-qemu-cortex-m4}
OUT=${3:-out}
mkdir -p "$OUT"
if [ -z "$MODEL" ]; then
    MODEL="$OUT/demo_kws.tflite"
    echo "== making the demo model (a small int8 keyword-spotting CNN with seeded weights): $MODEL"
    python3 examples/make_demo_model.py "$MODEL"
fi
echo "== microgen inspect $MODEL"
microgen inspect "$MODEL"
echo
echo "== microgen run $MODEL --reference (8 seeded inputs)"
python3 - "$MODEL" "$OUT/demo_input.npz" <<'PY'
import sys
import numpy as np
from microgen import importers
from microgen.testing.corpus import seeded_inputs
g = importers.load(sys.argv[1])
np.savez(sys.argv[2], **{t.name: seeded_inputs(t, 8, seed=0) for t in g.input_tensors()})
PY
microgen run "$MODEL" --reference --input "$OUT/demo_input.npz" --output "$OUT/demo_output.npz"
python3 - "$OUT/demo_output.npz" <<'PY'
import sys
import numpy as np
with np.load(sys.argv[1]) as f:
    for name in f.files:
        y = f[name]
        print(f"output {name}: {y.dtype}{list(y.shape)}; top-1 per sample: {y.reshape(len(y), -1).argmax(axis=1).tolist()}")
PY
echo
echo "(board $BOARD: building and running on emulated boards comes with 'microgen build --board'.)"
