"""C emission: `c_emitter.emit(graph, plan, steps, out_dir, name)` writes the library project."""

from .project import EmittedProject, check_name, collect_consts, emit

__all__ = ["EmittedProject", "check_name", "collect_consts", "emit"]
