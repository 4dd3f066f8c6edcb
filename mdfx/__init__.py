"""mdfx: PsyNeuLink-style feed-forward networks through ModECI MDF, trained with torch or LLVM.

``import mdfx as pnl`` runs a PsyNeuLink AutodiffComposition script unchanged.
Heavy backends (torch, llvmlite, onnxruntime) load only when first used.
"""

from typing import Any

from mdfx.composition.autodiff import AutodiffComposition
from mdfx.composition.composition import Composition
from mdfx.composition.enums import ExecutionMode, Loss, NodeRole, ReportProgress
from mdfx.composition.functions import (
    Exponential,
    Identity,
    Linear,
    LinearCombination,
    Logistic,
    ReLU,
    SoftMax,
    Tanh,
    TransferFunction,
)
from mdfx.composition.keywords import *  # noqa: F403  (PsyNeuLink's keyword constants, its public names)
from mdfx.composition.keywords import Context, LogCondition, ReportOutput
from mdfx.composition.learning_pathway import BackPropagation, Pathway
from mdfx.composition.loss_functions import LossFunction
from mdfx.composition.mechanisms import ProcessingMechanism, TransferMechanism, clear_registry
from mdfx.composition.projections import MappingProjection
from mdfx.composition.targets import LossMechanism
from mdfx.errors import (
    AutodiffCompositionError,
    CompositionError,
    DataError,
    GraphError,
    GridError,
    MdfxError,
    ParameterError,
    SchemaError,
    UnsupportedError,
)
from mdfx.io import load, save

# The module mdfx.sweep is light (dask and pandas load when a sweep runs); importing its
# function here keeps `mdfx.sweep(...)` the function, not the module.
from mdfx.sweep import sweep

__version__ = "0.1.0"


def from_torch(module: Any, example_input: Any, input_names: Any = None, output_names: Any = None) -> Any:
    """A torch module (nn.Sequential or torch.fx-traceable) as a GraphComposition with its own params.

    The graph keeps the module's parametrisation: params under their state_dict keys,
    layouts and dtypes; ``mdfx.save(comp, "w.pt")`` writes a state_dict the module loads.
    """
    from mdfx.composition.graph_model import GraphComposition
    from mdfx.converters.torch_import import from_torch as _from_torch

    return GraphComposition(_from_torch(module, example_input, input_names, output_names))


def from_mdf_with_weights(path: Any, weights: Any) -> Any:
    """MDF written without its weights (pytorch_to_mdf) plus a state_dict, .pt or .onnx file."""
    from mdfx.composition.graph_model import GraphComposition
    from mdfx.converters.torch_import import from_mdf_with_weights as _read

    return GraphComposition(_read(path, weights))


def validate(model: Any, inputs: Any = None, trials: int = 8, dtype: Any = ("float64", "float32"),
             seed: int = 0) -> list:
    """Run ``model`` (a composition, or a .json/.yaml/.onnx path) through every runner against
    the numpy reference; the rows of ``mdfx validate``'s table (``row.ok`` per runner). An
    ONNX file also runs as it is in onnxruntime (the ``onnxruntime (original)`` row).

    ``inputs`` maps INPUT nodes (or their names) to trials; by default ``trials``
    seeded random rows in [-1, 1].
    """
    from mdfx.runners import compare

    if inputs is not None:
        if not isinstance(inputs, dict):
            raise DataError(f"validate(): inputs must be a dict {{input node: trials}}, got {type(inputs).__name__}")
        # checked (real, finite, (trials, size)) by compare.validate's shared check, not cast here
        inputs = {getattr(k, "name", k): v for k, v in inputs.items()}
    from pathlib import Path

    from mdfx.io import to_graph

    # a path goes as it is (an ONNX file's original also runs); a composition as its graph
    graph = model if isinstance(model, str | Path) else to_graph(model)
    return compare.validate(graph, inputs=inputs, trials=trials, dtype=dtype, seed=seed)


def load_mdf(path: str) -> Any:
    """Read an MDF file (any supported dialect) into a composition."""
    return load(path)


def save_mdf(composition: Composition, path: str) -> Any:
    """Write a composition as MDF (.json or .yaml)."""
    return save(composition, path)


def get_mdf_serialized(composition: Composition, fmt: str = "json") -> str:
    """The composition's MDF as JSON or YAML text (PsyNeuLink's name for this)."""
    model = composition.to_mdf()
    return model.to_yaml() if fmt.lower() in ("yaml", "yml") else model.to_json()


__all__ = [
    "AutodiffCompositionError", "BackPropagation", "CompositionError", "Context", "LogCondition", "LossFunction", "LossMechanism",
    "ReportOutput",
    "ParameterError", "Pathway", "ProcessingMechanism",
    "AutodiffComposition", "Composition", "DataError", "ExecutionMode", "Exponential", "GraphError", "GridError",
    "Identity", "Linear", "LinearCombination", "Logistic", "Loss", "MappingProjection", "MdfxError", "NodeRole", "ReLU",
    "ReportProgress", "SchemaError", "from_mdf_with_weights", "from_torch", "validate", "SoftMax", "Tanh", "TransferFunction", "TransferMechanism",
    "UnsupportedError", "clear_registry", "get_mdf_serialized", "load", "load_mdf", "save", "save_mdf", "sweep",
]
