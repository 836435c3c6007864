"""The `microgen` command line: a thin layer that parses options and calls the stage functions.

Every MicrogenError becomes one line on stderr and exit code 2, without a traceback.
"""

from __future__ import annotations

import json
import os
import sys

# Before numpy loads: threaded BLAS makes the reference executor's small matmuls slower, not faster.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click

from . import __version__
from .errors import MicrogenError

MODEL = click.Path(dir_okay=False, path_type=str)


@click.group(context_settings=dict(help_option_names=["-h", "--help"]))
@click.version_option(__version__, prog_name="microgen")
def cli() -> None:
    """microgen: TinyML models (.tflite, .onnx) in, dependency-free C for microcontrollers out."""


@cli.command()
@click.argument("model", type=MODEL)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
def inspect(model: str, as_json: bool) -> None:
    """Per-op table of MODEL: shapes, dtypes, quantization, MACs, weight bytes, and totals."""
    from . import importers
    from .inspect_model import inspect_dict, inspect_text

    graph = importers.load(model)
    click.echo(json.dumps(inspect_dict(graph), indent=1) if as_json else inspect_text(graph))


@cli.command()
@click.argument("model", type=MODEL)
@click.option("--board", "-b", default="host", show_default=True, help="Board to generate code for.")
@click.option("--output", "-o", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for the generated project (created if needed).")
@click.option("--name", help="Library name and C symbol prefix (default: from the model file name).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("--dump-tir", is_flag=True, help="Also print the loop nests (TIR) of every kernel.")
@click.option("--memory", is_flag=True, help="Also print the arena layout over time.")
@click.option("--quantize", "quantize_to", type=click.Choice(["int8"]),
              help="Quantize a float MODEL first (post-training; see `microgen quantize`).")
@click.option("--calib", "calib_path", help="With --quantize: calibration data (.npy/.npz or a folder of them).")
@click.option("--synthetic-calib", is_flag=True, help="With --quantize and no data: calibrate on synthetic inputs.")
@click.option("--tuning-log", type=click.Path(dir_okay=False, exists=True),
              help="Use the best schedule per task from this `microgen tune` log (defaults elsewhere).")
def build(model: str, board: str, out_dir: str, name: str | None, as_json: bool, dump_tir: bool,
          memory: bool, quantize_to: str | None, calib_path: str | None, synthetic_calib: bool,
          tuning_log: str | None) -> None:
    """Generate a C library (and example program) for MODEL into a directory."""
    from . import pipeline

    if quantize_to:
        _, result = pipeline.build_quantized(model, out_dir, calib_path, synthetic_calib, name=name, board=board,
                                             warn=lambda msg: click.echo(msg, err=True))
    elif calib_path or synthetic_calib:
        raise click.UsageError("--calib and --synthetic-calib only go with --quantize int8")
    else:
        result = pipeline.build(model, out_dir, name=name, board=board, tuning_log=tuning_log)
    _say_tuning(result)
    summary = result.summary()
    code = pipeline.code_bytes(result)
    if code is not None:
        summary["code_bytes_host"] = code
    if dump_tir:
        from .tir.dump import dump_func
        for step in result.steps:
            if step.func is not None:
                click.echo(dump_func(step.func) + "\n")
    if memory:
        click.echo(result.plan.timeline() + "\n")
    if as_json:
        click.echo(json.dumps(summary, indent=1))
        return
    click.echo(pipeline.format_summary(summary))


@cli.command("quantize")
@click.argument("model", type=MODEL)
@click.option("--calib", "calib_path",
              help="Calibration data: .npy/.npz or a folder of them; first axis = samples, the model's input "
                   "layout. FILE.npz:KEY picks one array.")
@click.option("--synthetic-calib", is_flag=True,
              help="No data at hand: calibrate on seeded synthetic inputs in [0, 1] (accuracy will suffer).")
@click.option("--output", "-o", "out_path", type=click.Path(dir_okay=False),
              help="Write the quantized model here (.tflite).")
@click.option("--io", type=click.Choice(["int8", "float"]), default="int8", show_default=True,
              help="Model inputs/outputs: int8 tensors, or float with QUANTIZE/DEQUANTIZE at the edges.")
@click.option("--observer", type=click.Choice(["minmax", "percentile", "mse"]), default="minmax",
              show_default=True, help="How activation ranges are chosen from the calibration data.")
@click.option("--percentile", type=float, default=99.99, show_default=True, help="For --observer percentile.")
@click.option("--per-tensor-fc", is_flag=True, help="FULLY_CONNECTED weights per tensor (default: per channel).")
@click.option("--val", "val_path",
              help="Data for the accuracy estimate: .npz with arrays x and y (labels), or FILE.npz:XKEY,YKEY "
                   "(default: the calibration data, without labels).")
@click.option("--max-accuracy-drop", type=click.FloatRange(min=0.0), metavar="P",
              help="Exit 1 (and write no model) when the estimated drop exceeds P percentage points.")
@click.option("--int16", "int16", multiple=True, metavar="auto|TENSOR",
              help="Keep layers in int16 activations (16x8): 'auto' tries the worst layers and prints a "
                   "table (taking the cheapest choice within --max-accuracy-drop), or name output tensors.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Write the full report here: HTML for .html, else text.")
@click.option("--eval-samples", type=click.IntRange(min=1), help="Estimate on at most N samples.")
def quantize_cmd(model: str, calib_path: str | None, synthetic_calib: bool, out_path: str | None, io: str,
                 observer: str, percentile: float, per_tensor_fc: bool, val_path: str | None,
                 max_accuracy_drop: float | None, int16: tuple[str, ...], report_path: str | None,
                 eval_samples: int | None) -> None:
    """Post-training int8 quantization of a float MODEL, with an accuracy estimate."""
    from .quantize import QuantizeOptions
    from .quantize.report import pareto_lines, summary_lines, write_report
    from .quantize.run import quantize_file

    auto = "auto" in int16
    options = QuantizeOptions(observer=observer, percentile=percentile, per_channel_fc=not per_tensor_fc, io=io,
                              int16=tuple(n for n in int16 if n != "auto"))
    out = quantize_file(model, calib_path, synthetic_calib, options, val=val_path, max_drop=max_accuracy_drop,
                        int16_auto=auto, limit=eval_samples, warn=lambda msg: click.echo(msg, err=True))
    click.echo("\n".join(summary_lines(out.result, out.accuracy)))
    if out.choices:
        click.echo("16x8 choices (int16 activations for the worst layers):")
        click.echo("\n".join(pareto_lines(out.choices)))
    if report_path:
        write_report(report_path, out.result, out.accuracy, out.choices)
        click.echo(f"wrote {report_path}", err=True)
    if out.gate_message:
        click.echo(f"error: {out.gate_message}", err=True)
        raise click.exceptions.Exit(1)
    if out_path:
        from .exporters import write_tflite
        write_tflite(out.result.graph, out_path)
        click.echo(f"wrote {out_path}", err=True)


@cli.command()
@click.argument("model", type=MODEL)
@click.option("--reference", is_flag=True, help="Run the numpy reference executor (bit-exact with TFLM).")
@click.option("--board", "-b", help="Build for this board and run the generated code there (host: this machine).")
@click.option("--build-dir", type=click.Path(file_okay=False),
              help="Where to build for --board (default: a directory beside the output file).")
@click.option("--input", "-i", "input_path", required=True, type=click.Path(dir_okay=False),
              help="Samples: X.npy (one input) or X.npz (one array per input name); first axis = samples.")
@click.option("--output", "-o", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the outputs: Y.npy, or Y.npz for several outputs.")
@click.option("--port", help="Serial port of a real board (e.g. /dev/ttyACM0).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds to wait for the board to boot and to answer a command (runs get more).")
@click.option("--tuning-log", type=click.Path(dir_okay=False, exists=True),
              help="Use the best schedule per task from this `microgen tune` log (defaults elsewhere).")
def run(model: str, reference: bool, board: str | None, build_dir: str | None, input_path: str,
        output_path: str, port: str | None, timeout: float, tuning_log: str | None) -> None:
    """Run MODEL on every sample of the input file and write the outputs."""
    from . import importers, reference as ref
    from .arrays import load_samples, save_outputs

    if reference == bool(board):
        raise click.UsageError("choose where to run: --reference, or --board BOARD (e.g. --board host)")
    graph = importers.load(model)
    samples = load_samples(input_path, graph)
    n = len(next(iter(samples.values())))
    if reference:
        outputs = ref.run_samples(graph, samples)
        where = "the reference executor"
    else:
        from . import pipeline
        outputs = pipeline.run_on_board(model, board, samples, build_dir or output_path + ".build", port, timeout,
                                        tuning_log=tuning_log)
        where = f"board {board}"
    save_outputs(output_path, graph, outputs)
    click.echo(f"ran {n} sample(s) of {graph.name} on {where} -> {output_path}", err=True)


def _board_options(f):
    """--board, --port, --timeout, --build-dir, --tuning-log: shared by the commands that talk to a board."""
    f = click.option("--build-dir", type=click.Path(file_okay=False),
                     help="Keep the library and firmware here (default: a temporary directory).")(f)
    f = click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
                     help="Seconds to wait for the board to boot and to answer a command (runs get more).")(f)
    f = click.option("--port", help="Serial port of a real board (e.g. /dev/ttyACM0).")(f)
    f = click.option("--tuning-log", type=click.Path(dir_okay=False, exists=True),
                     help="Use the best schedule per task from this `microgen tune` log.")(f)
    return click.option("--board", "-b", required=True, help="Board to run on (see boards/).")(f)


def _in_build_dir(build_dir: str | None, fn):
    """Call fn(directory): build_dir if given, else a temporary directory removed afterwards."""
    if build_dir:
        return fn(build_dir)
    import tempfile
    with tempfile.TemporaryDirectory(prefix="microgen-") as tmp:
        return fn(tmp)


@cli.command()
@click.argument("model", type=MODEL)
@_board_options
@click.option("--samples", "-n", type=click.IntRange(min=1), default=8, show_default=True,
              help="Number of seeded inputs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the inputs.")
def validate(model: str, board: str, port: str | None, timeout: float, build_dir: str | None, samples: int,
             seed: int, tuning_log: str | None) -> None:
    """Run seeded inputs on BOARD and compare with the reference executor (exit 1 on any mismatch)."""
    from . import pipeline

    result = _in_build_dir(build_dir, lambda d: pipeline.validate(model, board, samples, seed, d, port, timeout,
                                                                  tuning_log=tuning_log))
    click.echo(result.text())
    if not result.ok:
        raise click.exceptions.Exit(1)


@cli.command()
@click.argument("model", type=MODEL)
@_board_options
@click.option("--repeats", type=click.IntRange(min=1), default=2, show_default=True,
              help="Inferences to run; every figure is the minimum over them.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Also write a self-contained HTML report (cost chart, arena picture) here.")
def profile(model: str, board: str, port: str | None, timeout: float, build_dir: str | None, repeats: int,
            as_json: bool, html_path: str | None, tuning_log: str | None) -> None:
    """Per-layer cost of one inference on BOARD: cycles on real boards, emulated instructions on QEMU."""
    from . import pipeline, profile_report

    prof, result = _in_build_dir(build_dir, lambda d: pipeline.profile_build(model, board, d, port, timeout, repeats,
                                                                             tuning_log=tuning_log))
    if html_path:
        with open(html_path, "w") as f:
            f.write(profile_report.to_html(prof))
    tuned = _tuned_layers(result)
    if as_json:
        d = profile_report.to_dict(prof)
        if result.tuning is not None:
            for layer in d["layers"]:
                layer["tuned"] = tuned.get(layer["index"])
            d["tuning_log"] = result.tuning.log
        click.echo(json.dumps(d, indent=1))
    else:
        click.echo(profile_report.to_text(prof))
        if result.tuning is not None:
            click.echo(f"\n{result.tuning.summary()}; layers with tuned schedules:")
            click.echo("\n".join(f"  {i:>3} {s}" for i, s in tuned.items()) or "  (none)")
    if result.tuning is not None:
        _say_tuning(result, summary=False)
    if html_path:
        click.echo(f"wrote {html_path}", err=True)


def _say_tuning(result, summary: bool = True) -> None:
    """On stderr: what a --tuning-log build took from the log, and every task left at its default."""
    if result.tuning is None:
        return
    if summary:
        click.echo(result.tuning.summary(), err=True)
    for note in result.tuning.notes:
        click.echo(f"  {note}", err=True)


def _tuned_layers(result) -> dict[int, str]:
    """Profile layer index (kernel call) -> the tuned schedule it runs, for layers that use one."""
    if result.tuning is None:
        return {}
    ops = list(result.graph.ops)
    kernels = [st for st in result.steps if st.func is not None]
    out = {}
    for layer, step in enumerate(kernels):
        i = next(k for k, op in enumerate(ops) if op is step.op)
        if i in result.tuning.tuned:
            out[layer] = str(result.tuning.tuned[i])
    return out


@cli.command("tune")
@click.argument("model", type=MODEL)
@click.option("--board", "-b", required=True, help="Board to tune on (emulated: QEMU; real: --port/--ports).")
@click.option("--trials", "-n", type=click.IntRange(min=0), default=200, show_default=True,
              help="Variants to measure in all, shared between tasks by their share of the model's cost "
                   "(the log's earlier records of these tasks count).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=2, show_default=True,
              help="Emulated boards measuring in parallel (QEMU instances).")
@click.option("--log", "log_path", type=click.Path(dir_okay=False),
              help="The tuning log (JSON lines; appended to, read to resume and to warm-start). "
                   "Default: MODEL.BOARD.tuning.jsonl here.")
@click.option("--time-budget", type=click.FloatRange(min=0), metavar="S",
              help="Stop proposing variants after S seconds (the batches under way finish).")
@click.option("--port", help="Serial port of one real board (e.g. /dev/ttyACM0).")
@click.option("--ports", "ports_file", type=click.Path(dir_okay=False, exists=True),
              help="Real boards: a file listing one serial port per line (TOML `ports = [...]` also read).")
@click.option("--search", "strategy", type=click.Choice(["model", "random"]), default="model", show_default=True,
              help="Pick variants with the learned cost model, or uniformly at random (for comparison).")
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="Variants compiled into one firmware and measured in one run.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the search and of the input.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds to wait for a board to boot and answer (runs get more).")
@click.option("--templates", help="Search only these templates (comma-separated names; 'generic' too).")
@click.option("--build-dir", type=click.Path(file_okay=False), help="Keep the firmware builds here.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Also write an HTML report with the tuning curves here.")
@click.option("--compare-log", "compare_logs", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="With --report: also draw the curves of this log (e.g. a --search random run).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def tune_cmd(model: str, board: str, trials: int, jobs: int, log_path: str | None, time_budget: float | None,
             port: str | None, ports_file: str | None, strategy: str, batch: int, seed: int, timeout: float,
             build_dir: str | None, report_path: str | None, compare_logs: tuple[str, ...], as_json: bool,
             templates: str | None) -> None:
    """Autotune MODEL's kernels on BOARD: measure schedule variants there, log every result."""
    from . import tune
    from .tune import report

    ports = tuple(p for p in [port] if p) + (tune.read_ports(ports_file) if ports_file else ())
    result = tune.tune(model, board, trials=trials, jobs=jobs, log_path=log_path, time_budget=time_budget,
                       ports=ports, seed=seed, strategy=strategy, batch=batch, build_dir=build_dir,
                       timeout=timeout, progress=lambda text: click.echo(text, err=True, nl=not text.startswith("\r")),
                       tty=sys.stderr.isatty(),
                       templates=tuple(t.strip() for t in templates.split(",")) if templates else None)
    if report_path:
        from .tune import log as tlog
        runs = {("cost model" if strategy == "model" else "random") + " (this log)": tlog.read(result.log)}
        for other in compare_logs:
            runs[other] = tlog.read(other)
        with open(report_path, "w") as f:
            f.write(report.to_html(result, runs))
    if as_json:
        click.echo(json.dumps(report.to_dict(result), indent=1))
    else:
        click.echo(report.summary_text(result))
    if report_path:
        click.echo(f"wrote {report_path}", err=True)


@cli.command("boards")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list instead of the table.")
def boards_cmd(as_json: bool) -> None:
    """List the boards (boards/*/board.toml): kind, core, clock, memory, features, counter."""
    from .boards import format_boards, list_boards

    found = list_boards()
    click.echo(json.dumps([b.summary() for b in found], indent=1) if as_json else format_boards(found))


def main() -> None:
    try:
        code = cli.main(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except MicrogenError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":
    main()
