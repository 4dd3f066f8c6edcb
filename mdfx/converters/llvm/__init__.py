"""The LLVM backend: a Net compiled, with llvmlite, into kernels that run a whole learn().

``codegen`` builds the IR (forward, loss, backward, optimizer, the loops over
epochs, minibatches and trials) from this backend's rules in ``rules`` (one per
transfer op, loss and optimizer, the elementwise ones lowered from the op
table's expressions by ``emit``); ``jit`` compiles it with MCJIT and caches
the result. ``mdfx.runners.llvm`` validates data and calls the kernels.

Importing this package imports llvmlite; ``import mdfx`` does not import it.
"""

from mdfx.converters.llvm.rules import LOSS_RULES, OPTIMIZER_RULES, TRANSFER_RULES

__all__ = ["LOSS_RULES", "OPTIMIZER_RULES", "TRANSFER_RULES"]
