"""The quantize flow behind `microgen quantize` and `microgen build --quantize int8`: model file and
data files in; quantized graph, accuracy estimate, optional 16x8 table and the accuracy gate out.

Kept out of cli.py so the command stays a thin layer and the flow can be called (and tested) from
Python: `quantize_file(...)` returns an `Outcome`; the caller prints it, writes files, and exits 1
when `outcome.gate_message` is set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Callable

from .. import importers
from ..errors import InvalidInputError
from ..graph import Graph
from . import QuantizeOptions, QuantizeResult, quantize
from .accuracy import Accuracy, evaluate
from .calib import load_calibration, load_validation, synthetic_calibration
from .mixed import Choice, pick, search_int16

SYNTHETIC_SAMPLES = 32


@dataclass(frozen=True)
class Outcome:
    result: QuantizeResult            # the chosen quantization (int8, or a 16x8 choice)
    accuracy: Accuracy | None         # its estimate (None when not asked for)
    choices: list[Choice] | None      # the 16x8 table when searched
    gate_message: str | None          # set when --max-accuracy-drop fails


def calibration_for(graph: Graph, calib: str | os.PathLike | None, synthetic: bool,
                    warn: Callable[[str], None]) -> dict:
    """Calibration arrays from files, or synthetic ones (with a loud warning), or a refusal."""
    if calib is not None:
        return load_calibration(calib, graph)
    if not synthetic:
        raise InvalidInputError("no calibration data: give --calib DATA (.npy/.npz or a folder of them, "
                                "first axis = samples, in the model's input layout), or --synthetic-calib to "
                                "calibrate on made-up inputs (accuracy will suffer)")
    warn(f"WARNING: --synthetic-calib: calibrating on {SYNTHETIC_SAMPLES} seeded synthetic samples in [0, 1], "
         f"not real data. The activation ranges are guesses: if the model's real inputs are not in [0, 1], "
         f"or look nothing like smooth noise, the int8 model can be far less accurate than the estimate "
         f"says. Use --calib DATA with a few hundred real inputs.")
    return synthetic_calibration(graph, SYNTHETIC_SAMPLES)


def quantize_file(model_path: str | os.PathLike, calib: str | os.PathLike | None = None, synthetic: bool = False,
                  options: QuantizeOptions | None = None, val: str | os.PathLike | None = None,
                  estimate: bool = True, max_drop: float | None = None, int16_auto: bool = False,
                  limit: int | None = None, warn: Callable[[str], None] = print) -> Outcome:
    """Import, calibrate, quantize; estimate accuracy on `val` (or the calibration data); with
    int16_auto, search 16x8 choices and, if the int8 drop exceeds max_drop, take the cheapest one
    within it. gate_message says why the result fails max_drop (None if it passes or there is none)."""
    graph = importers.load(model_path)
    data = calibration_for(graph, calib, synthetic, warn)
    result = quantize(graph, data, options)
    if not (estimate or max_drop is not None or int16_auto):
        return Outcome(result, None, None, None)
    labels = None
    if val is not None:
        samples, labels = load_validation(val, graph)
        kind = "validation"
    else:
        samples, kind = data, "synthetic calibration" if calib is None else "calibration"
    acc = evaluate(result, samples, labels, kind, limit)
    if max_drop is not None and acc.drop_points is None:
        raise InvalidInputError("--max-accuracy-drop needs a classifier (a softmax / logistic output) or labels "
                                "(--val DATA with arrays x and y)")
    choices = None
    if int16_auto:
        choices = search_int16(result, samples, labels, kind, base=acc) if limit is None else \
            search_int16(result, {k: v[:limit] for k, v in samples.items()},
                         None if labels is None else labels[:limit], kind, base=acc)
        if max_drop is not None and acc.drop_points > max_drop:
            best = pick(choices, max_drop)
            if best is not None:
                result, acc = replace(best.result, samples=result.samples), best.accuracy
    gate = None
    if max_drop is not None and acc.drop_points > max_drop:
        what = (f"accuracy {100 * acc.float_accuracy:.1f}% float -> {100 * acc.quant_accuracy:.1f}% quantized"
                if acc.quant_accuracy is not None else
                f"top-1 agreement with float {100 * acc.agreement:.1f}% (no labels: disagreement bounds the drop)")
        gate = (f"estimated accuracy drop {acc.drop_points:.1f} points exceeds --max-accuracy-drop {max_drop:g} "
                f"({what} on {acc.samples} {acc.data} samples)"
                + ("" if int16_auto else "; try --int16 auto, --observer percentile, or more calibration data"))
    return Outcome(result, acc, choices, gate)
