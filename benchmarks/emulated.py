"""Emulated instructions per inference on the QEMU boards: microgen (default schedules), microgen plain
C (no SIMD instructions), and the TFLM + CMSIS-NN baseline (../shared/baselines/tflm_cmsis_nn.json),
side by side in one run, with ratios and their geometric mean.

Unit: instructions QEMU executed (-icount), not cycles: QEMU models no pipeline, so Cortex-M4 and M7 count
the same way and these figures say nothing about real-board time.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

from microgen import pipeline
from microgen.testing.corpus import SHARED, model_path
from microgen.textui import num, table

MODELS = {
    "KWS": ("mlperf_tiny/kws_ref_model.tflite", "kws"),
    "VWW": ("mlperf_tiny/vww_96_int8.tflite", "vww"),
    "ResNet-8": ("mlperf_tiny/pretrainedResnet_quant.tflite", "ic"),
    "AD": ("mlperf_tiny/ad01_int8.tflite", "ad"),
}


def measure(rel: str, board: str, plain_c: bool, tmp: Path) -> dict:
    """One inference's emulated instructions (harness excluded), plus arena and flash figures."""
    build_dir = tmp / f"{Path(rel).stem}-{board}-{'plain' if plain_c else 'default'}"
    result, b, fw = pipeline.build_for_board(model_path(rel), board, build_dir, plain_c=plain_c)
    prof = pipeline.profile_firmware(result, b, fw.elf, repeats=2)
    return dict(total=prof.total, macs=sum(layer.macs for layer in prof.layers), arena=result.plan.arena_size,
                flash=fw.text + fw.data)


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def comparison_table(board: str, baseline_key: str | None, tmp: Path) -> str:
    baseline = json.loads((SHARED / "baselines" / "tflm_cmsis_nn.json").read_text())["models"]
    rows, ratios = [], []
    for label, (rel, key) in MODELS.items():
        fast = measure(rel, board, False, tmp)
        plain = measure(rel, board, True, tmp)
        row = [label, num(fast["total"]), num(plain["total"])]
        if baseline_key:
            base = baseline[key][baseline_key]["emulated_instructions"]
            ratios.append(fast["total"] / base)
            row += [num(base), f"{fast['total'] / base:.2f}x"]
        row += [f"{fast['total'] / fast['macs']:.2f}", f"{plain['total'] / fast['total']:.2f}x", num(fast["arena"]),
                num(fast["flash"])]
        rows.append(row)
    headers = ["model", "microgen", "microgen plain C"]
    if baseline_key:
        headers += ["TFLM+CMSIS-NN", "microgen / baseline"]
    headers += ["microgen instr/MAC", "plain / microgen", "arena B", "firmware flash B"]
    text = table(headers, rows, right=range(1, len(headers)))
    if baseline_key:
        text += f"\ngeometric mean microgen / baseline: {geomean(ratios):.2f}x (goal <= 0.5x, none above 0.7x)"
    return text


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for board, key in [("qemu-cortex-m4", "cortex-m4"), ("qemu-cortex-m7", "cortex-m7"),
                           ("qemu-cortex-m55", None), ("qemu-riscv32", None)]:
            print(f"\n{board}: emulated instructions per inference (QEMU -icount; not cycles)")
            print(comparison_table(board, key, Path(tmp)))


if __name__ == "__main__":
    main()
