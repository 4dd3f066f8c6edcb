"""The LLVM backend: a Graph compiled, with llvmlite, into kernels that run a whole learn().

``graphgen`` builds the IR (the loops over epochs and minibatches, forward, loss,
backward, optimizer) from this backend's rule per graph op in ``graph_rules``
(:data:`GRAPH_RULES`; the elementwise ones lowered from the op table's expressions
by ``emit``) and per loss and optimizer in ``rules``; ``jit`` compiles it with MCJIT
and caches the result. ``mdfx.runners.llvm`` validates data and calls the kernels.

Importing this package imports llvmlite; ``import mdfx`` does not import it.
"""

from mdfx.converters.llvm.graph_rules import GRAPH_RULES
from mdfx.converters.llvm.rules import LOSS_RULES, OPTIMIZER_RULES

__all__ = ["GRAPH_RULES", "LOSS_RULES", "OPTIMIZER_RULES"]
