"""Child process for oracles.tflm_run: python -m microgen.testing._tflm_worker REQ.pkl RESP.pkl"""

import pickle
import sys

import numpy as np


def main(req_path: str, resp_path: str) -> None:
    from tflite_micro.python.tflite_micro import runtime

    with open(req_path, "rb") as f:
        req = pickle.load(f)
    config = (runtime.InterpreterConfig.kPreserveAllTensors if req["preserve_all"]
              else runtime.InterpreterConfig.kAllocationRecording)
    interp = runtime.Interpreter.from_file(req["model"], arena_size=req["arena_size"],
                                           intrepreter_config=config)
    inputs = req["inputs"]
    n = len(inputs[0])
    n_out, n_tensors = _model_counts(req["model"])
    outputs: list[list[np.ndarray]] = [[] for _ in range(n_out)]
    tensors: dict[int, list[np.ndarray]] = {}
    for s in range(n):
        for i, arr in enumerate(inputs):
            interp.set_input(np.ascontiguousarray(arr[s]), i)
        interp.invoke()
        for k in range(n_out):
            outputs[k].append(np.array(interp.get_output(k)))
        if req["preserve_all"]:
            # GetTensor segfaults past the last tensor: the count comes from the flatbuffer.
            for idx in range(n_tensors):
                t = interp.GetTensor(idx, 0)
                tensors.setdefault(idx, []).append(np.array(t["tensor_data"]))
        interp.reset()
    result = dict(outputs=[np.stack(o) for o in outputs])
    if req["preserve_all"]:
        result["tensors"] = {k: np.stack(v) for k, v in tensors.items()}
    with open(resp_path, "wb") as f:
        pickle.dump(result, f)


def _model_counts(path: str) -> tuple[int, int]:
    """(number of outputs, number of tensors) of subgraph 0."""
    import tflite

    with open(path, "rb") as f:
        model = tflite.Model.GetRootAsModel(f.read(), 0)
    sg = model.Subgraphs(0)
    return sg.OutputsLength(), sg.TensorsLength()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
