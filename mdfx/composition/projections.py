"""MappingProjection: a weight matrix from one mechanism to another."""

from __future__ import annotations

import numpy as np

from mdfx.composition.mechanisms import TransferMechanism, _Log
from mdfx.composition.parameters import Parameters, attribute
from mdfx.errors import ParameterError


class MatrixError(ParameterError, ValueError):
    """A matrix a projection cannot take (a ValueError too, as a numpy refusal was)."""


class MappingProjection:
    """``receiver`` += ``sender.value @ matrix``; ``matrix`` has shape (sender size, receiver size).

    With no ``matrix``, PsyNeuLink's default is used when the projection joins a
    composition (see :func:`default_matrix`).
    """

    def __init__(self, sender: TransferMechanism | None = None, receiver: TransferMechanism | None = None,
                 matrix: object = None, name: str | None = None, learnable: bool = True,
                 learning_rate: float | bool | None = None) -> None:
        self.sender = _owner(sender)
        self.receiver = _owner(receiver)
        #: the receiver's InputPort this projection reaches (its index in ``receiver.input_ports``)
        self.receiver_port = port_index(receiver)
        #: the sender's OutputPort it leaves (its index in ``sender.output_ports``)
        self.sender_port = port_index(sender, "output_ports")
        self._matrix: np.ndarray | None = None
        #: the execution context (composition) whose values ``matrix`` holds, None before any
        #: ran it; the matrix as it was then; other contexts' values (see _enter)
        self._holder: int | None = None
        self._initial: np.ndarray | None = None
        self._contexts: dict[int, np.ndarray] = {}
        self._name = name  # before the matrix: its checks name the projection
        if matrix is not None and not isinstance(matrix, str):
            self.matrix = matrix  # type: ignore[assignment]
        self._matrix_spec = matrix if isinstance(matrix, str) else None
        if self._matrix_spec is not None and self.sender is not None and self.receiver is not None \
                and _is_random_spec(self._matrix_spec):
            # PsyNeuLink draws a random matrix as soon as both ends are known, so a seeded
            # script gets the same matrices only if we draw in the same order
            self._matrix = default_matrix(self)[...]
        self.learnable = learnable
        self.learning_rate = learning_rate
        self.parameters = Parameters(self, matrix=attribute(self, "matrix"),
                                     learning_rate=attribute(self, "learning_rate"))
        self.log = _Log()
        if self.sender is not None and self.receiver is not None and hasattr(self.sender, "efferents"):
            # as PsyNeuLink, a projection made between two mechanisms is found again by a
            # pathway that lists them without it
            self.sender.efferents.append(self)
            self.receiver.afferents.append(self)

    def get_mod_matrix(self, context: object = None) -> np.ndarray:
        """The matrix in use (PsyNeuLink's modulated matrix; mdfx does not modulate matrices)."""
        return self.matrix

    def set_log_conditions(self, items: object, log_condition: object = None) -> None:
        """Log ``items`` (``"matrix"``) during learn(), as ``projection.log.set_log_conditions``."""
        self.log.set_log_conditions(items, log_condition)

    @property
    def learning_rate(self) -> float | bool | None:
        """This projection's own learning rate: a number, ``None``/``True`` (the composition's or
        learn()'s rate), or ``False``/``0`` (frozen: not trained)."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float | bool | None) -> None:
        if not (value is None or isinstance(value, bool | int | float | np.number)):
            raise ParameterError(f"projection {self.name!r}: learning_rate must be a number, True, False "
                                 f"or None, got {value!r}")
        if isinstance(value, int | float | np.number) and not isinstance(value, bool) and not (
                np.isfinite(float(value)) and value >= 0):
            raise ParameterError(f"projection {self.name!r}: learning_rate must be a finite number >= 0, "
                                 f"got {value!r}")
        self._learning_rate = value

    @property
    def name(self) -> str:
        if self._name is not None:
            return self._name
        s = self.sender.name if self.sender else "?"
        r = self.receiver.name if self.receiver else "?"
        out_ports = getattr(self.sender, "output_ports", None)
        port = out_ports[self.sender_port].name if out_ports and self.sender_port < len(out_ports) else "RESULT"
        ports = getattr(self.receiver, "input_ports", None)
        into = ports[self.receiver_port].name if ports and self.receiver_port < len(ports) else "InputPort-0"
        return f"MappingProjection from {s}[{port}] to {r}[{into}]"

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    @property
    def matrix(self) -> np.ndarray:
        if self._matrix is None:
            self._matrix = default_matrix(self)[...]
        return self._matrix

    @matrix.setter
    def matrix(self, value: object) -> None:
        if np.asarray(value).dtype.kind == "b":  # True/False weights are a mask, not a matrix
            raise MatrixError(f"projection {self.name!r}: the matrix holds booleans; give numbers "
                              "(e.g. matrix.astype(float))")
        arr = np.array(value, dtype=np.float64)
        if arr.ndim == 0:
            # A scalar scales the identity-shaped default, as a number spec does in PsyNeuLink.
            arr = arr * np.ones((self._size("sender"), self._size("receiver")))
        if arr.ndim != 2:
            raise ValueError(f"projection {self.name!r}: a matrix must be 2-D, got shape {arr.shape}")
        if self._matrix is not None and arr.shape != self._matrix.shape:
            # a reassignment (a callback's, say) keeps the shape the composition was built with
            raise MatrixError(f"projection {self.name!r}: the new matrix has shape {arr.shape}, the projection's "
                              f"is {self._matrix.shape} (sender size x receiver size)")
        # kept as a whole-array view, so that ``matrix.base`` is the matrix too: PsyNeuLink
        # scripts read ``projection.matrix.base`` (its ParameterPort's base value)
        self._matrix = arr[...]
        # an assigned matrix is the value every composition starts from again
        self._holder, self._initial = None, None
        self._contexts.clear()

    def _enter(self, context: int) -> None:
        """Make ``matrix`` hold the values of execution context ``context`` (a composition's).

        PsyNeuLink keeps a parameter's value per composition: a projection shared by two
        compositions starts from its initial matrix in each, and training in one leaves the
        other's values alone (measured, facts.md). The matrix is swapped in place, so arrays
        shared with a lowered graph stay shared.
        """
        if self._holder == context:
            return
        if self._holder is None:
            self._initial = self.matrix.copy()
        else:
            self._contexts[self._holder] = self.matrix.copy()
            self.matrix[...] = self._contexts.pop(context, self._initial)
        self._holder = context

    def _size(self, end: str) -> int:
        """The size of the port this projection leaves (sender) or reaches (receiver)."""
        mech = getattr(self, end)
        if mech is None:
            raise ValueError(f"projection {self.name!r} has no {end} yet; give the matrix after sender/receiver")
        if end == "sender" and hasattr(mech, "port_slice"):
            part = mech.port_slice(self.sender_port)
            return part.stop - part.start
        if end == "receiver" and hasattr(mech, "input_port_size"):
            return mech.input_port_size(self.receiver_port)
        return mech.size

    def __repr__(self) -> str:
        return f"MappingProjection(name={self.name!r})"


def port_index(end: object, ports: str = "input_ports") -> int:
    """The index of port ``end`` among its owner's ``ports``; 0 for a mechanism (its first)."""
    owner = getattr(end, "owner", None)
    for i, port in enumerate(getattr(owner, ports, ())):
        if port is end:
            return i
    return 0


def _owner(end: object) -> object:
    """A port given as sender/receiver stands for its mechanism (mdfx mechanisms have one port each)."""
    return getattr(end, "owner", end)


def default_matrix(projection: MappingProjection) -> np.ndarray:
    """PsyNeuLink's AUTO_ASSIGN_MATRIX: identity when sender and receiver have the same size, else all ones."""
    rows, cols = projection._size("sender"), projection._size("receiver")
    if projection._matrix_spec is not None:
        # PsyNeuLink's spelling ("IdentityMatrix") and the constant-style one ("IDENTITY_MATRIX")
        spec = projection._matrix_spec.upper().replace("_", "")
        if spec in ("IDENTITYMATRIX", "IDENTITY") and rows == cols:
            return np.eye(rows)
        if spec in ("FULLCONNECTIVITYMATRIX", "FULLCONNECTIVITY"):
            return np.ones((rows, cols))
        if _is_random_spec(spec):
            # PsyNeuLink 0.21 draws np.random.rand(rows, cols) three times while it builds the
            # projection and keeps the last draw (facts.md); consuming the global stream alike
            # makes seeded scripts see its matrices
            for _ in range(3):
                drawn = np.random.rand(rows, cols)
            return drawn
        raise ValueError(f"projection {projection.name!r}: unknown matrix spec {projection._matrix_spec!r}")
    return np.eye(rows) if rows == cols else np.ones((rows, cols))


def _is_random_spec(spec: str) -> bool:
    return spec.upper().replace("_", "") in ("RANDOMCONNECTIVITYMATRIX", "RANDOM")
