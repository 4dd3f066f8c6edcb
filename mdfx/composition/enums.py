"""PsyNeuLink's enums: ExecutionMode, Loss, NodeRole (names and aliases as in PsyNeuLink)."""

from __future__ import annotations

from enum import Enum

from mdfx.errors import UnsupportedError


class ExecutionMode(Enum):
    """How run() and learn() execute.

    ``Python``: the numpy reference (run) and numpy backprop (learn).
    ``PyTorch``: learn() trains a torch module; run() uses the reference (as in
    PsyNeuLink, where run() in PyTorch mode executes in Python).
    ``LLVMRun``: llvmlite-compiled kernels for both. ``ONNX`` (mdfx only): run()
    through onnxruntime. PsyNeuLink's other compiled modes are aliases of LLVMRun.
    """

    Python = "Python"
    PyTorch = "PyTorch"
    LLVMRun = "LLVMRun"
    ONNX = "ONNX"
    # PsyNeuLink's names for compiled execution; all run the compiled kernels here
    # (its PTX modes target CUDA through LLVM; mdfx compiles for the CPU).
    LLVM = "LLVMRun"
    LLVMExec = "LLVMRun"
    Auto = "LLVMRun"
    COMPILED = "LLVMRun"
    PTXRun = "LLVMRun"
    PTXExec = "LLVMRun"
    _LLVMExec = "LLVMRun"
    #: PsyNeuLink's node-by-node compiled mode: import only, run() and learn() refuse it
    _LLVMPerNode = "_LLVMPerNode"


def check_mode(mode: object, where: str) -> None:
    """Refuse PsyNeuLink's execution modes that mdfx only knows by name (``_LLVMPerNode``)."""
    if mode is ExecutionMode._LLVMPerNode:
        raise UnsupportedError(f"{where}: execution_mode {mode} (PsyNeuLink's node-by-node compiled "
                               "execution) is not implemented in mdfx; use ExecutionMode.LLVMRun, "
                               "which compiles the whole network")


class Loss(Enum):
    """PsyNeuLink's loss members (torch.nn losses with PsyNeuLink's reductions; see mdfx.ops).

    ``L0`` (alias ``SUM``) exists for compatibility; like PsyNeuLink 0.21 it cannot
    be used for learning. ``KL`` is mdfx's alias of ``KL_DIV``.
    """

    L0 = "L0"
    SUM = "L0"
    L1 = "L1"
    SSE = "SSE"
    MSE = "MSE"
    CROSS_ENTROPY = "CROSS_ENTROPY"
    BINARY_CROSS_ENTROPY = "BINARY_CROSS_ENTROPY"
    KL_DIV = "KL_DIV"
    KL = "KL_DIV"
    NLL = "NLL"
    POISSON_NLL = "POISSON_NLL"
    #: mdfx's members for ``loss_spec=torch.nn.SoftMarginLoss()`` (reduction mean / sum)
    SOFT_MARGIN = "SOFT_MARGIN"
    SOFT_MARGIN_SUM = "SOFT_MARGIN_SUM"


class NodeRole(Enum):
    """PsyNeuLink's node roles. Feed-forward networks of mechanisms have INPUT/ORIGIN,
    OUTPUT/TERMINAL, INTERNAL and SINGLETON nodes; the other roles (control, learning,
    cycles) never occur in mdfx, so ``get_nodes_by_role`` returns no node for them."""

    INPUT = "INPUT"
    ORIGIN = "ORIGIN"
    OUTPUT = "OUTPUT"
    TERMINAL = "TERMINAL"
    INTERNAL = "INTERNAL"
    SINGLETON = "SINGLETON"
    BIAS = "BIAS"
    CYCLE = "CYCLE"
    FEEDBACK_SENDER = "FEEDBACK_SENDER"
    FEEDBACK_RECEIVER = "FEEDBACK_RECEIVER"
    CONTROL_OBJECTIVE = "CONTROL_OBJECTIVE"
    CONTROLLER = "CONTROLLER"
    CONTROLLER_OBJECTIVE = "CONTROLLER_OBJECTIVE"
    LEARNING = "LEARNING"
    SAMPLE = "SAMPLE"
    TARGET_INPUT = "TARGET_INPUT"
    TARGET_INTERNAL = "TARGET_INTERNAL"
    LEARNING_OBJECTIVE = "LEARNING_OBJECTIVE"
    PROBE = "PROBE"


class ReportProgress(Enum):
    """Whether learn() shows a progress bar (epochs and loss)."""

    OFF = "OFF"
    ON = "ON"
