"""Static memory planning: `memory_planner.plan(graph)` puts every activation at a fixed arena offset.

liveness.py: buffers (tensors sharing memory in place) and lifetimes, and the op-order search;
placement.py: offsets (greedy orderings, then exact branch and bound); plan.py: ArenaPlan and its checks.
"""

from .liveness import Buffer
from .plan import ArenaPlan, plan

__all__ = ["ArenaPlan", "Buffer", "plan"]
