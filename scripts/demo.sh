#!/usr/bin/env bash
# make demo: the main job, on a model the project makes itself (or MODEL) and an emulated board (BOARD).
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
NAME=$(basename "${MODEL%.*}")
BUILD="$OUT/$NAME-$BOARD"

echo; echo "== microgen inspect $MODEL"
microgen inspect "$MODEL"

echo; echo "== microgen build $MODEL --board $BOARD -o $BUILD"
microgen build "$MODEL" --board "$BOARD" -o "$BUILD"

echo; echo "== microgen run on $BOARD (8 seeded inputs) and on the reference executor"
python3 - "$MODEL" "$OUT/demo_input.npz" <<'PY'
import sys
import numpy as np
from microgen import importers
from microgen.testing.corpus import seeded_inputs
g = importers.load(sys.argv[1])
np.savez(sys.argv[2], **{t.name: seeded_inputs(t, 8, seed=0) for t in g.input_tensors()})
PY
microgen run "$MODEL" --board "$BOARD" --build-dir "$BUILD" -i "$OUT/demo_input.npz" -o "$OUT/demo_board.npz"
microgen run "$MODEL" --reference -i "$OUT/demo_input.npz" -o "$OUT/demo_reference.npz"
python3 - "$OUT/demo_board.npz" "$OUT/demo_reference.npz" <<'PY'
import sys
import numpy as np
with np.load(sys.argv[1]) as board, np.load(sys.argv[2]) as ref:
    for name in board.files:
        y = board[name]
        same = np.array_equal(y, ref[name])
        print(f"output {name}: {y.dtype}{list(y.shape)}, top-1 per sample {y.reshape(len(y), -1).argmax(1).tolist()}, "
              f"{'identical to' if same else 'DIFFERENT from'} the reference executor")
        if not same:
            sys.exit(1)
PY

echo; echo "== microgen validate $MODEL --board $BOARD"
microgen validate "$MODEL" --board "$BOARD" --build-dir "$BUILD" --samples 16

echo; echo "== microgen profile $MODEL --board $BOARD"
microgen profile "$MODEL" --board "$BOARD" --build-dir "$BUILD" --html "$OUT/$NAME-$BOARD-profile.html"
echo; echo "profile report: $OUT/$NAME-$BOARD-profile.html"
