"""Copying weights between a projection's matrix and a torch tensor (PsyNeuLink's
``copy_torch_param_to_projection_matrix`` / ``copy_projection_matrix_to_torch_param``).

A torch weight has PsyNeuLink's matrix transposed: ``Linear(3, 5).weight`` is (5, 3) and
fits a projection from 3 units to 5, whose matrix is (3, 5). Both directions write in
place (the projection's array, which the composition's graph shares; the torch tensor,
which its module shares), so no reference held elsewhere goes stale.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mdfx.errors import AutodiffCompositionError


def find_projection(comp: Any, projection: object, method: str) -> Any:
    """The composition's MappingProjection named or given by ``projection``."""
    for p in comp._projections:
        if p is projection or (isinstance(projection, str) and p.name == projection):
            return p
    label = projection if isinstance(projection, str) else getattr(projection, "name", projection)
    raise AutodiffCompositionError(f"{method}(): projection {label!r} is not in {comp.name!r} (its projections: "
                                   f"{', '.join(repr(p.name) for p in comp._projections)})")


def torch_tensor(torch_param: object, torch_module: object, torch_slice: object, method: str) -> Any:
    """The tensor meant by a Parameter/Tensor, or by a state_dict name / parameter index of
    ``torch_module``; ``torch_slice`` selects rows of it (a view, so writes reach the module)."""
    import torch

    if torch_slice is not None and not isinstance(torch_slice, slice):
        raise AutodiffCompositionError(f"{method}(): torch_slice must be a slice (of the torch parameter's rows), "
                                       f"got {torch_slice!r}")
    if torch_module is not None and not isinstance(torch_module, torch.nn.Module):
        hint = " (give a Parameter or Tensor as torch_param)" if isinstance(torch_module, torch.Tensor) else ""
        raise AutodiffCompositionError(f"{method}(): torch_module must be a torch.nn.Module, got "
                                       f"{type(torch_module).__name__}{hint}")
    if isinstance(torch_param, torch.nn.Module):
        raise AutodiffCompositionError(f"{method}(): torch_param is a torch.nn.Module ({torch_param}); give the "
                                       "module as torch_module and name its parameter (str) or index (int) here")
    if isinstance(torch_param, torch.Tensor):
        tensor = torch_param
    elif isinstance(torch_param, str | int) and not isinstance(torch_param, bool):
        if torch_module is None:
            raise AutodiffCompositionError(f"{method}(): torch_param={torch_param!r} names a parameter; give the "
                                           "torch_module that holds it")
        tensor = _module_param(torch_module, torch_param, method)
    elif torch_param is None:
        raise AutodiffCompositionError(f"{method}(): torch_param is required: a torch Parameter or Tensor, or the "
                                       "name or index of a parameter of torch_module")
    else:
        raise AutodiffCompositionError(f"{method}(): torch_param must be a torch Parameter or Tensor, or a str/int "
                                       f"naming a parameter of torch_module; got {type(torch_param).__name__}")
    return tensor if torch_slice is None else tensor[torch_slice]


def _module_param(module: Any, key: str | int, method: str) -> Any:
    if isinstance(key, str):
        # state_dict()'s tensors share storage with the module's parameters and buffers
        state = module.state_dict(keep_vars=True)
        if key not in state:
            raise AutodiffCompositionError(f"{method}(): {key!r} is not in the state_dict of {module} "
                                           f"(its keys: {', '.join(state)})")
        return state[key]
    params = list(module.parameters())
    if not -len(params) <= key < len(params):
        raise AutodiffCompositionError(f"{method}(): parameter index {key} is out of range for {module} "
                                       f"({len(params)} parameters)")
    return params[key]


def as_matrix(tensor: Any) -> np.ndarray:
    """A torch weight as the projection matrix it stands for: transposed, float64, 2-D; a 1-D
    tensor (a bias) is one row, as a bias projection's matrix."""
    import torch

    value = tensor.detach().cpu().to(torch.float64).numpy()
    return value.reshape(1, -1) if value.ndim < 2 else value.T


def check_shape(proj: Any, given: tuple[int, ...], method: str) -> None:
    if tuple(given) != proj.matrix.shape:
        raise AutodiffCompositionError(
            f"{method}(): the torch parameter, transposed to a matrix, has shape {tuple(given)}; projection "
            f"{proj.name!r} has a matrix of shape {proj.matrix.shape} (a torch weight is (receiver, sender))")


def torch_to_matrix(comp: Any, projection: object, torch_param: object, torch_module: object,
                    torch_slice: object) -> np.ndarray:
    method = "copy_torch_param_to_projection_matrix"
    proj = find_projection(comp, projection, method)
    value = as_matrix(torch_tensor(torch_param, torch_module, torch_slice, method))
    check_shape(proj, value.shape, method)
    proj.matrix[...] = value
    return value


def matrix_to_torch(comp: Any, projection: object, torch_param: object, torch_module: object,
                    torch_slice: object) -> Any:
    import torch

    method = "copy_projection_matrix_to_torch_param"
    proj = find_projection(comp, projection, method)
    tensor = torch_tensor(torch_param, torch_module, torch_slice, method)
    check_shape(proj, tuple(reversed(tuple(tensor.shape))) if tensor.dim() == 2 else (1, tensor.numel()), method)
    with torch.no_grad():
        tensor.copy_(torch.as_tensor(proj.matrix.T, dtype=tensor.dtype, device=tensor.device).reshape(tensor.shape))
    return tensor.detach()
