"""TransferMechanism: a layer of units with one transfer function."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from mdfx.composition.functions import TransferFunction, as_function
from mdfx.composition.parameters import Parameters
from mdfx.errors import UnsupportedError

_counter = itertools.count()
_created = itertools.count()  # creation order: sets of mechanisms in a pathway are taken in it


class TransferMechanism:
    """A layer of ``size`` units computing ``function`` of its summed input.

    Accepts PsyNeuLink's ``input_shapes=`` and its older spelling ``size=``, or a
    ``default_variable`` whose length gives the size. ``bias`` (an mdfx
    extension; PsyNeuLink has none) adds a trainable vector to the net input.
    """

    _default_port = "RESULT"  # PsyNeuLink's name of the primary OutputPort
    _port_per_input = "RESULT-{}"  # PsyNeuLink's names of the OutputPorts of InputPorts side by side

    def __init__(self, default_variable: object = None, size: int | None = None,
                 input_shapes: int | None = None, function: object = None, name: str | None = None,
                 bias: object = None, learnable_bias: bool = True, integrator_mode: bool = False,
                 initial_value: object = None, output_ports: object = None, input_ports: object = None,
                 integration_rate: float = 0.5) -> None:
        if integrator_mode:
            raise UnsupportedError(f"mechanism {name!r}: integrator_mode=True makes the mechanism stateful "
                                   "(a time integrator); mdfx builds stateless feed-forward layers only")
        names = _output_port_names(output_ports, name, self._default_port)
        given = [v for v in (size, input_shapes) if v is not None]
        if len(given) == 2 and _port_sizes(size) != _port_sizes(input_shapes):
            raise ValueError(f"size={size!r} and input_shapes={input_shapes!r} disagree")
        port_names = _input_port_names(input_ports)
        if given:
            sizes = _port_sizes(given[0])
        elif default_variable is not None:
            sizes = [int(np.atleast_1d(np.asarray(default_variable, dtype=float)).shape[-1])]
        else:
            sizes = [1] * max(1, len(port_names or []))
        if port_names is not None and len(sizes) == 1 and len(port_names) > 1:
            sizes = sizes * len(port_names)  # one size given for several named ports
        if port_names is not None and len(port_names) != len(sizes):
            raise ValueError(f"mechanism {name!r}: input_ports={port_names!r} names {len(port_names)} InputPorts "
                             f"but input_shapes gives {len(sizes)}")
        self.function: TransferFunction = as_function(function)
        self.size = _combined_size(sizes, self.function, name)
        #: the InputPorts' sizes; several of them without a LinearCombination lie side by side
        self.port_sizes = tuple(sizes)
        self.name = name if name is not None else f"{type(self).__name__}-{next(_counter)}"
        self._created = next(_created)
        #: PsyNeuLink's initial_value and integration_rate: an integrator's starting state and rate,
        #: used only with integrator_mode=True (refused above), so they change nothing here
        self.initial_value = initial_value
        if isinstance(integration_rate, bool) or not isinstance(integration_rate, int | float) \
                or not 0 <= integration_rate <= 1:
            raise ValueError(f"mechanism {name!r}: integration_rate must be a number in [0, 1], got "
                             f"{integration_rate!r}")
        self.integration_rate = float(integration_rate)
        self.default_variable = None if default_variable is None else np.asarray(default_variable, dtype=float)
        self.bias = None if bias is None else np.array(bias, dtype=np.float64).reshape(self.size)
        self.learnable_bias = learnable_bias
        #: the last value computed, shape (1, size) as PsyNeuLink's ``value``
        self.value = np.zeros((1, self.size))
        self.log = _Log()
        self.integrator_mode = False
        if self.combine == "concat":
            # one OutputPort per InputPort, named as PsyNeuLink names them (measured)
            if output_ports is not None:
                raise UnsupportedError(f"mechanism {name!r}: output_ports={output_ports!r} with several "
                                       "InputPorts side by side; mdfx gives it one OutputPort per InputPort")
            names = [self._port_per_input.format(i) for i in range(len(sizes))]
        self.output_ports = [OutputPort(self, n) for n in names]
        #: projections made from this mechanism with both ends given (a pathway reuses them)
        self.efferents: list[Any] = []
        #: projections that reach this mechanism (made with both ends given, or added to a composition)
        self.afferents: list[Any] = []
        self.input_ports = [InputPort(self, n) for n in port_names or
                            [f"InputPort-{i}" for i in range(len(sizes))]]
        self.parameters = Parameters(
            self, value=("value", False), variable=("variable", False), function=("function", False))

    @property
    def input_shapes(self) -> int:
        return self.size

    @property
    def output_port(self) -> OutputPort:
        """The primary OutputPort (PsyNeuLink's ``RESULT``): the mechanism's value."""
        return self.output_ports[0]

    @property
    def input_port(self) -> InputPort:
        return self.input_ports[0]

    @property
    def output_values(self) -> list[np.ndarray]:
        return [p.value for p in self.output_ports]

    def get_output_values(self, context: object = None) -> list[np.ndarray]:
        """The OutputPorts' values (``context`` accepted for PsyNeuLink compatibility)."""
        return self.output_values

    @property
    def variable(self) -> np.ndarray:
        # one row per InputPort a LinearCombination combines; ports side by side make one row
        return np.zeros((len(self.input_ports) if self.combine in ("sum", "product") else 1, self.size))

    @property
    def combine(self) -> str:
        """How the InputPorts combine into the net input: the LinearCombination's operation, side by
        side ("concat") for several InputPorts of another function, else "sum" (of the projections)."""
        operation = vars(self.function).get("operation")  # not hasattr: a miss raises in __getattr__ (slow)
        if operation is not None:
            return str(operation)
        return "concat" if len(self.port_sizes) > 1 else "sum"

    def port_slice(self, port: int) -> slice:
        """Where OutputPort ``port``'s units lie in the mechanism's value."""
        if self.combine != "concat":
            return slice(0, self.size)
        start = sum(self.port_sizes[:port])
        return slice(start, start + self.port_sizes[port])

    def input_port_size(self, port: int) -> int:
        return self.port_sizes[port] if self.combine == "concat" else self.size

    def default_input(self) -> np.ndarray:
        """The input run() uses when none is given: ``default_variable``, else zeros."""
        if self.default_variable is not None and self.default_variable.size == self.size:
            return self.default_variable.reshape(1, self.size)
        return np.zeros((1, self.size))

    def set_log_conditions(self, items: object, log_condition: object = None) -> None:
        """Log ``items`` (``"value"``) during learn(), as ``mechanism.log.set_log_conditions``."""
        self.log.set_log_conditions(items, log_condition)

    def execute(self, variable: object = None, execution_mode: object = None) -> np.ndarray:
        """The function applied to ``variable`` (default zeros), as PsyNeuLink's ``execute``: shape (1, size).

        ``execution_mode`` ExecutionMode.LLVMRun (mdfx) computes it compiled, as a one-op graph.
        """
        x = np.zeros((1, self.size)) if variable is None else np.atleast_2d(np.asarray(variable, dtype=np.float64))
        if _compiled(execution_mode):
            self.value = self._compiled_value(x)
            return self.value
        # a LinearCombination combines the rows (InputPorts) into one
        self.value = np.atleast_2d(np.asarray(self.function(x), dtype=np.float64))
        return self.value

    def _compiled_value(self, x: np.ndarray) -> np.ndarray:
        from mdfx.runners import llvm
        from mdfx.schema.graph import Graph, Node

        if len(self.input_ports) > 1 or x.shape[-1] != self.size:
            raise UnsupportedError(f"mechanism {self.name!r}: compiled execute() takes one InputPort of "
                                   f"{self.size} units, got a variable of shape {x.shape}")
        op = self.function.op.name
        graph = Graph.build(self.name, {"x": (self.size,)}, [],
                            [Node(self.name, op, ["x"], "y", dict(self.function.params))], ["y"])
        return llvm.run(graph, {"x": x})["y"]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, size={self.size}, function={self.function!r})"


class ProcessingMechanism(TransferMechanism):
    """PsyNeuLink's general mechanism: a TransferMechanism (default function Linear).

    ``function`` may also be a :class:`~mdfx.composition.loss_functions.LossFunction`
    (or another reducing function): such a mechanism can only be executed on its own
    and cannot join a composition's network.
    """

    _default_port = "OutputPort-0"
    _port_per_input = "InputPort-{}"

    def __init__(self, default_variable: object = None, size: int | None = None,
                 input_shapes: int | None = None, function: object = None, name: str | None = None,
                 bias: object = None, learnable_bias: bool = True, integrator_mode: bool = False,
                 initial_value: object = None, output_ports: object = None, input_ports: object = None,
                 integration_rate: float = 0.5) -> None:
        reducer = function if callable(getattr(function, "reduces", None)) else None
        super().__init__(default_variable=default_variable if reducer is None else None, size=size,
                         input_shapes=input_shapes, function=None if reducer else function, name=name,
                         bias=bias, learnable_bias=learnable_bias, integrator_mode=integrator_mode,
                         initial_value=initial_value, output_ports=output_ports, input_ports=input_ports,
                         integration_rate=integration_rate)
        self._reducer = reducer
        self.default_variable = None if default_variable is None else np.asarray(default_variable, dtype=float)
        if reducer is not None:
            self.function = reducer  # type: ignore[assignment]

    def execute(self, variable: object = None, execution_mode: object = None) -> np.ndarray:
        if self._reducer is None:
            return super().execute(variable, execution_mode)
        x = self.default_variable if variable is None else np.asarray(variable, dtype=np.float64)
        if _compiled(execution_mode):
            from mdfx.composition.enums import ExecutionMode

            self.value = np.atleast_2d(self._reducer.execute(x, ExecutionMode.LLVMRun))
        else:
            self.value = np.atleast_2d(self._reducer(x))
        return self.value


class OutputPort:
    """A mechanism's OutputPort: its name, owner and value (every port carries the mechanism's value)."""

    def __init__(self, owner: TransferMechanism, name: str) -> None:
        self.owner = owner
        self.name = name
        self.parameters = Parameters(self, value=("value", False))

    @property
    def value(self) -> np.ndarray:
        index = next(i for i, p in enumerate(self.owner.output_ports) if p is self)
        return np.asarray(self.owner.value)[0][self.owner.port_slice(index)]

    def __repr__(self) -> str:
        return f"(OutputPort {self.name})"


class InputPort:
    """A mechanism's (single) InputPort."""

    def __init__(self, owner: TransferMechanism, name: str) -> None:
        self.owner = owner
        self.name = name

    def __repr__(self) -> str:
        return f"(InputPort {self.name})"


def _compiled(execution_mode: object) -> bool:
    """Whether ``execution_mode`` asks for compiled code (LLVMRun or one of its aliases)."""
    from mdfx.composition.enums import ExecutionMode

    if execution_mode is None or execution_mode is ExecutionMode.Python:
        return False
    if execution_mode is ExecutionMode.LLVMRun:
        return True
    raise UnsupportedError(f"execute(execution_mode={execution_mode!r}): a mechanism executes in Python or LLVMRun")


def _output_port_names(output_ports: object, name: str | None, default: str) -> list[str]:
    if output_ports is None:
        return [default]
    items = [output_ports] if isinstance(output_ports, str) else list(output_ports)  # type: ignore[call-overload]
    names = [str(getattr(item, "name", item)) for item in items]
    # PsyNeuLink's standard OutputPorts that compute something from the value (MEAN, MAX_VAL, ...);
    # any other name is a port carrying the mechanism's value (measured)
    computed = [n for n in names if n.upper() in _COMPUTED_PORTS]
    if computed or not names or not all(isinstance(item, str) for item in items):
        raise UnsupportedError(f"mechanism {name!r}: output_ports={items!r}; mdfx OutputPorts carry the "
                               f"mechanism's value (give names; {', '.join(sorted(_COMPUTED_PORTS))} are not "
                               "supported)")
    return names


_COMPUTED_PORTS = frozenset({"MEAN", "MEDIAN", "STANDARD_DEVIATION", "VARIANCE", "MAX_VAL", "MAX_ABS_VAL",
                             "MAX_ONE_HOT", "MAX_ABS_ONE_HOT", "MAX_INDICATOR", "MAX_ABS_INDICATOR", "PROB"})


def _as_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"a mechanism's size must be a positive integer, got {value!r}")
    return int(value)


def _port_sizes(value: object) -> list[int]:
    """``input_shapes``/``size``: one size, or one per InputPort (a list or tuple)."""
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError("input_shapes=() gives no InputPort; give a size")
        return [_as_size(v) for v in value]
    return [_as_size(value)]


def _input_port_names(input_ports: object) -> list[str] | None:
    if input_ports is None:
        return None
    items = [input_ports] if isinstance(input_ports, str) else list(input_ports)  # type: ignore[call-overload]
    names = []
    for item in items:
        if not isinstance(item, str):
            raise UnsupportedError(f"input_ports={input_ports!r}: mdfx takes InputPorts by name (str), got "
                                   f"{type(item).__name__}")
        names.append(item)
    return names


def _combined_size(sizes: list[int], function: TransferFunction, name: str | None) -> int:
    """The mechanism's size: its one InputPort's, or that of the InputPorts a LinearCombination
    combines elementwise (all of one size, as PsyNeuLink requires)."""
    from mdfx.composition.functions import LinearCombination

    if isinstance(function, LinearCombination) and (
            function.operation not in ("sum", "product") or function.weights is not None
            or function.exponents is not None):
        raise UnsupportedError(f"mechanism {name!r}: {function!r} with weights/exponents or operation "
                               f"{function.operation!r}; a mechanism combines its InputPorts by 'sum' or "
                               "'product' (with scale and offset) only")
    if len(sizes) == 1:
        return sizes[0]
    if not isinstance(function, LinearCombination):
        if not function.op.elementwise:
            raise UnsupportedError(f"mechanism {name!r}: input_shapes={tuple(sizes)} gives it {len(sizes)} "
                                   f"InputPorts, each mapped by {function!r} on its own; mdfx does that for "
                                   "elementwise functions only")
        return sum(sizes)  # side by side, one OutputPort each
    if len(set(sizes)) != 1:
        raise ValueError(f"mechanism {name!r}: LinearCombination combines InputPorts of one size, got sizes "
                         f"{tuple(sizes)}")
    return sizes[0]


def clear_registry(registry: object = None) -> None:
    """Forget the default names given so far (PsyNeuLink's ``clear_registry``): the next
    unnamed mechanism is numbered from 0 again. ``registry`` must be None (every registry)."""
    global _counter
    if registry is not None:
        raise UnsupportedError(f"clear_registry(registry={registry!r}): mdfx keeps one registry of default "
                               "names; call clear_registry() with no argument")
    _counter = itertools.count()


class _Log:
    """Minimal stand-in for PsyNeuLink's Log: values recorded during learn()."""

    def __init__(self) -> None:
        self.entries: dict[str, list[np.ndarray]] = {}
        self.logged: set[str] = set()
        #: PsyNeuLink's layout: context -> column -> one entry per minibatch
        self.by_context: dict[str, dict[str, list[np.ndarray]]] = {}

    def default_input(self) -> np.ndarray:
        """The input run() uses when none is given: ``default_variable``, else zeros."""
        if self.default_variable is not None and self.default_variable.size == self.size:
            return self.default_variable.reshape(1, self.size)
        return np.zeros((1, self.size))

    def set_log_conditions(self, items: object, log_condition: object = None) -> None:
        names = [items] if isinstance(items, str) else list(items)  # type: ignore[arg-type]
        self.logged.update(str(n) for n in names)

    def nparray_dict(self) -> dict[str, np.ndarray]:
        return {k: np.array(v) for k, v in self.entries.items()}

    def record(self, item: str, value: np.ndarray) -> None:
        if item in self.logged:
            self.entries.setdefault(item, []).append(np.array(value, copy=True))

    def record_in(self, context: str, items: dict[str, np.ndarray]) -> None:
        """One minibatch's entry in PsyNeuLink's layout (``nparray_dictionary``), under the
        execution context ``context``: ``items`` maps each column name to its value."""
        columns = self.by_context.setdefault(context, {})
        for name, value in items.items():
            columns.setdefault(name, []).append(np.array(value, copy=True))

    def nparray_dictionary(self, *items: str) -> dict[str, dict[str, np.ndarray]]:
        """PsyNeuLink's layout: {context: {"Run", "Trial", "Pass", "Time_step", item: entries}},
        one entry per minibatch learned (Trial counts them; Run, Pass, Time_step are 0)."""
        out = {}
        for context, columns in self.by_context.items():
            n = len(next(iter(columns.values())))
            table: dict[str, np.ndarray] = {
                "Run": np.zeros((n, 1), dtype=int), "Trial": np.arange(n).reshape(n, 1),
                "Pass": np.zeros((n, 1), dtype=int), "Time_step": np.zeros((n, 1), dtype=int)}
            for name, values in columns.items():
                if not items or name in items:
                    table[name] = _stacked(values)
            out[context] = table
        return out

    def nparray(self, *items: str) -> np.ndarray:
        """PsyNeuLink's 2-row object array: execution contexts, then per context a list of
        columns, each its name followed by its entries."""
        tables = self.nparray_dictionary(*items)
        out = np.empty((2, 1 + len(tables)), dtype=object)
        out[0, 0], out[1, 0] = "Execution Context", "Data"
        for i, (context, table) in enumerate(tables.items(), start=1):
            out[0, i] = context
            out[1, i] = [[[name], *map(_plain, values)] if name in _COUNTERS else [name, *map(_plain, values)]
                         for name, values in table.items()]
        return out

    def print_entries(self, *items: str) -> None:
        """Print the logged entries: one line per item and minibatch."""
        for context, table in self.nparray_dictionary(*items).items():
            print(f"log of context {context!r}")
            for name, values in table.items():
                if name not in _COUNTERS:
                    for trial, value in zip(table["Trial"][:, 0], values, strict=True):
                        print(f"  {name:<12} trial {trial:<5} {np.asarray(value).ravel()}")


_COUNTERS = ("Run", "Trial", "Pass", "Time_step")


def _plain(value: object) -> object:
    return value.tolist() if isinstance(value, np.ndarray) else value


def _stacked(values: list[np.ndarray]) -> np.ndarray:
    """The entries as one array, or an object array of them when their shapes differ."""
    if len({v.shape for v in values}) == 1:
        return np.stack(values)
    out = np.empty(len(values), dtype=object)
    out[:] = [v.tolist() for v in values]
    return out
