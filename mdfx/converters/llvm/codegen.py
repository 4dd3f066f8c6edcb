"""Net -> LLVM IR: the ``learn`` kernel (the whole training loop) and the ``infer`` kernel.

One ``learn`` call runs minibatches ``k0 <= k < k1`` of the flat schedule
"epoch after epoch, minibatch after minibatch": minibatch ``k`` is minibatch
``k % nb`` of epoch ``k // nb`` (``nb = ceil(trials / B)``), and it is the
optimizer's step ``k + 1``. The runner calls it once for a whole learn(), once
per epoch (early stopping) or once per minibatch (Python callbacks): the same
code either way.

Per minibatch, trial by trial (``r < nrows``, the trial ``order[epoch, k*B + r]``):
forward every node, the loss rule of every OUTPUT node, backward in reverse
topological order. With B == 1 the optimizer updates each weight as soon as its
gradient is known (after its use in backpropagation); with B > 1 gradients are
summed over the trials into scratch arrays and applied after the last trial.
Network sizes, the minibatch size and every op parameter are compile-time
constants; trial counts, ``k0``/``k1``, the learning rate and weight decay are
arguments, so changing them does not recompile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llvmlite import ir

from mdfx import ops
from mdfx.converters.llvm.emit import F64, FLOAT_TYPES, I32, I64, STACK_LIMIT_BYTES, Emitter
from mdfx.converters.llvm.rules import LOSS_RULES, OPTIMIZER_RULES, TRANSFER_RULES, StepScalars
from mdfx.errors import UnsupportedError
from mdfx.schema.net import Net

#: Status codes a kernel returns.
OK, OUT_OF_MEMORY = 0, 1


@dataclass(frozen=True)
class Signature:
    """A kernel's arguments: pointer groups in this order, then the scalars.

    ``learn(params, state, inputs, targets, order, losses, last, ntrials, k0, k1, lr, wd, step0) -> i32``;
    ``infer(params, inputs, outputs, ntrials) -> i32``. Every pointer is to a contiguous
    row-major array of the working float type (``order``: int64).
    """

    params: tuple[str, ...]  #: every weight array, learnable or not: projections, then "<node>.bias"
    learnable: tuple[str, ...]
    state: tuple[tuple[str, str], ...]  #: optimizer state arrays: (param, slot)
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def signature(net: Net, optimizer: str | None) -> Signature:
    params = tuple(p.name for p in net.projections) + tuple(
        f"{n.name}.bias" for n in net.nodes if n.bias is not None)
    learnable = tuple(p.name for p in net.projections if p.learnable) + tuple(
        f"{n.name}.bias" for n in net.nodes if n.bias is not None and n.bias_learnable)
    slots = OPTIMIZER_RULES[optimizer].state if optimizer else ()
    state = tuple((name, slot) for name in learnable for slot in slots)
    return Signature(params, learnable, state, tuple(net.inputs), tuple(net.outputs))


def check_supported(net: Net, loss: str | None = None, optimizer: str | None = None) -> None:
    """Refuse, naming the op, what this backend has no rule for."""
    for node in net.nodes:
        if node.op not in TRANSFER_RULES:
            raise UnsupportedError(f"node {node.name!r}: the LLVM backend has no rule for transfer "
                                   f"function {node.op!r}; it has: {', '.join(TRANSFER_RULES)}")
    if loss is not None and loss not in LOSS_RULES:
        raise UnsupportedError(f"the LLVM backend has no rule for loss {loss!r}; it has: {', '.join(LOSS_RULES)}")
    if optimizer is not None and optimizer not in OPTIMIZER_RULES:
        raise UnsupportedError(f"the LLVM backend has no rule for optimizer {optimizer!r}; "
                               f"it has: {', '.join(OPTIMIZER_RULES)}")


class _Kernel:
    """The pieces both kernels share: argument unpacking, per-node scratch rows, the forward pass."""

    def __init__(self, net: Net, dtype: str, sig: Signature, name: str, scalars: list[ir.Type],
                 groups: list[tuple[str, int, ir.Type]]) -> None:
        self.net = net
        self.sig = sig
        self.fty = FLOAT_TYPES[dtype]
        self.module = ir.Module(name=f"mdfx.{name}")
        fptr = self.fty.as_pointer()
        pointer_types = [ty if ty is not None else fptr for _, count, ty in groups for _ in range(count)]
        fnty = ir.FunctionType(I32, pointer_types + scalars)
        self.func = ir.Function(self.module, fnty, name)
        for arg in self.func.args[:len(pointer_types)]:
            # distinct buffers (the runner checks they do not overlap): lets LLVM vectorise
            arg.add_attribute("noalias")
        args = iter(self.func.args)
        self.groups = {group: [next(args) for _ in range(count)] for group, count, _ in groups}
        self.scalars = list(args)
        self.e = Emitter(self.module, self.func, self.fty)
        self.weight = dict(zip(sig.params, self.groups["params"], strict=True))
        self.params = {n.name: ops.fill_params(ops.transfer_op(n.op), n.params) for n in net.nodes}
        self.incoming = {n.name: net.incoming(n.name) for n in net.nodes}

    def scratch_rows(self, names: list[str], extra: dict[str, int]) -> dict[str, ir.Value]:
        """One row per (node, role) plus the ``extra`` arrays; on the stack when small, else malloc'd."""
        sizes = {name: self.net.node(name.rsplit(":", 1)[0]).size for name in names} | extra
        itemsize = 8 if self.fty == F64 else 4
        on_heap = sum(sizes.values()) * itemsize > STACK_LIMIT_BYTES
        return {name: self.e.scratch(count, name, on_heap) for name, count in sizes.items()}

    def forward_row(self, x: dict[str, ir.Value], y: dict[str, ir.Value], trial: ir.Value) -> None:
        """The reference forward pass for one trial: net input, then the transfer rule, node by node."""
        e, b = self.e, self.e.b
        inputs = dict(zip(self.sig.inputs, self.groups["inputs"], strict=True))
        for node in self.net.nodes:
            n, xn = node.size, x[node.name]
            if node.name in inputs:
                u = e.row(inputs[node.name], trial, n)
                with e.loop(n, "j") as j:
                    e.store(e.load(u, j), xn, j)
            else:
                with e.loop(n, "j") as j:
                    e.store(e.const(0.0), xn, j)
                for p in self.incoming[node.name]:
                    ys, w, ns = y[p.sender], self.weight[p.name], self.net.node(p.sender).size
                    with e.loop(ns, "i") as i:
                        a, wrow = e.load(ys, i), e.row(w, i, n)
                        with e.loop(n, "j") as j:
                            e.store(b.fadd(e.load(xn, j), b.fmul(a, e.load(wrow, j))), xn, j)
            if node.bias is not None:
                bias = self.weight[f"{node.name}.bias"]
                with e.loop(n, "j") as j:
                    e.store(b.fadd(e.load(xn, j), e.load(bias, j)), xn, j)
            TRANSFER_RULES[node.op].forward(e, xn, y[node.name], n, self.params[node.name])

    def copy_row(self, src: ir.Value, dst: ir.Value, size: int) -> None:
        with self.e.loop(size, "j") as j:
            self.e.store(self.e.load(src, j), dst, j)


def _gradient_flow(net: Net) -> tuple[set[str], set[str]]:
    """(nodes with a loss gradient, nodes whose d(loss)/d(net input) the backward pass needs)."""
    has_grad = set(net.outputs)
    for node in reversed(net.nodes):
        if any(p.receiver in has_grad for p in net.projections if p.sender == node.name):
            has_grad.add(node.name)
    need_dx: set[str] = set()
    for node in net.nodes:
        if node.name not in has_grad:
            continue
        trains_bias = node.bias is not None and node.bias_learnable
        if trains_bias or any(p.learnable or p.sender in need_dx for p in net.incoming(node.name)):
            need_dx.add(node.name)
    return has_grad, need_dx


def build_learn(net: Net, dtype: str, loss: str, optimizer: str, minibatch: int,
                weight_decay: bool) -> tuple[ir.Module, Signature]:
    """The ``learn`` kernel for ``net`` trained with ``loss``/``optimizer``, minibatches of ``minibatch``."""
    check_supported(net, loss, optimizer)
    sig = signature(net, optimizer)
    fptr = FLOAT_TYPES[dtype].as_pointer()
    groups = [("params", len(sig.params), None), ("state", len(sig.state), None),
              ("inputs", len(sig.inputs), None), ("targets", len(sig.outputs), None),
              ("order", 1, I64.as_pointer()), ("losses", 1, fptr), ("last", len(sig.outputs), None)]
    k = _Kernel(net, dtype, sig, "learn", [I64, I64, I64, F64, F64, I64], groups)
    _LearnBody(k, loss, optimizer, minibatch, weight_decay).emit()
    return k.module, sig


def build_infer(net: Net, dtype: str) -> tuple[ir.Module, Signature]:
    """The ``infer`` kernel: the forward pass of every trial, OUTPUT values written row by row."""
    check_supported(net)
    sig = signature(net, None)
    groups = [("params", len(sig.params), None), ("inputs", len(sig.inputs), None),
              ("outputs", len(sig.outputs), None)]
    k = _Kernel(net, dtype, sig, "infer", [I64], groups)
    e = k.e
    names = [n.name for n in net.nodes]
    rows = k.scratch_rows([f"{n}:x" for n in names] + [f"{n}:y" for n in names], {})
    x = {n: rows[f"{n}:x"] for n in names}
    y = {n: rows[f"{n}:y"] for n in names}
    _guard_heap(e)
    (ntrials,) = k.scalars
    with e.loop(ntrials, "t") as t:
        k.forward_row(x, y, t)
        for name, out in zip(sig.outputs, k.groups["outputs"], strict=True):
            size = net.node(name).size
            k.copy_row(y[name], e.row(out, t, size), size)
    e.free_heap()
    e.b.ret(ir.Constant(I32, OK))
    return k.module, sig


def _guard_heap(e: Emitter) -> None:
    """Return OUT_OF_MEMORY right away when a scratch malloc failed."""
    ok = e.heap_ok()
    if ok is None:
        return
    with e.b.if_then(e.b.not_(ok), likely=False):
        e.free_heap()  # free(NULL) is a no-op, so freeing all is safe
        e.b.ret(ir.Constant(I32, OUT_OF_MEMORY))


class _LearnBody:
    """Emits the body of ``learn``: the minibatch loop, the trial loop inside it, the updates."""

    def __init__(self, k: _Kernel, loss: str, optimizer: str, minibatch: int, weight_decay: bool) -> None:
        self.k, self.e, self.net = k, k.e, k.net
        self.loss = LOSS_RULES[loss]
        self.opt = OPTIMIZER_RULES[optimizer]
        self.hyper = dict(ops.optimizer_op(optimizer).hyper)
        self.batch = minibatch
        self.weight_decay = weight_decay
        _, self.need_dx = _gradient_flow(self.net)
        sig = k.sig
        self.state = {name: tuple(s for (p, _), s in zip(sig.state, k.groups["state"], strict=True) if p == name)
                      for name in sig.learnable}
        self.learnable = set(sig.learnable)
        size = {n.name: n.size for n in self.net.nodes}
        self.param_size = {p.name: size[p.sender] * size[p.receiver] for p in self.net.projections}
        self.param_size |= {f"{n.name}.bias": n.size for n in self.net.nodes if n.bias is not None}

    def emit(self) -> None:
        k, e, net = self.k, self.e, self.net
        names = [n.name for n in net.nodes]
        roles = [f"{n}:x" for n in names] + [f"{n}:y" for n in names]
        roles += [f"{n}:dy" for n in names if n in self.need_dx or n in net.outputs]
        roles += [f"{n}:dx" for n in names if n in self.need_dx]
        grads = {}
        if self.batch > 1:  # gradient sums over the minibatch
            grads = {f"grad:{name}": self.param_size[name] for name in k.sig.learnable}
        self.rows = k.scratch_rows(roles, grads)
        _guard_heap(e)
        ntrials, k0, k1, lr, wd, step0 = k.scalars
        b = e.b
        per_epoch = b.sdiv(b.add(ntrials, e.i64(self.batch - 1)), e.i64(self.batch))
        with e.loop(k1, "k", start=k0) as kk:
            epoch = b.sdiv(kk, per_epoch)
            base = b.mul(b.sub(kk, b.mul(epoch, per_epoch)), e.i64(self.batch))
            order = e.at(k.groups["order"][0], b.add(b.mul(epoch, ntrials), base))
            if self.batch == 1:
                nrows: ir.Value | int = 1
            else:
                left = b.sub(ntrials, base)
                nrows = b.select(b.icmp_signed("<", left, e.i64(self.batch)), left, e.i64(self.batch))
            # step0: optimizer steps taken by earlier learn() calls (Adam's state carries over)
            step_no = b.add(b.add(kk, e.i64(1)), step0)
            step = self.opt.prepare(e, step_no, lr, wd if self.weight_decay else None, self.hyper)
            self.minibatch(order, nrows, step, kk)
        e.free_heap()
        b.ret(ir.Constant(I32, OK))

    def minibatch(self, order: ir.Value, nrows: ir.Value | int, step: StepScalars, kk: ir.Value) -> None:
        k, e, net, b = self.k, self.e, self.net, self.e.b
        if self.batch > 1:
            for name in k.sig.learnable:
                self.zero(self.rows[f"grad:{name}"], self.param_size[name])
        divisors = {o: self.loss.divisor(e, nrows, net.node(o).size) for o in net.outputs}
        totals = {o: e.var(e.const(0.0), f"loss.{o}") for o in net.outputs}
        targets = dict(zip(net.outputs, k.groups["targets"], strict=True))
        last = dict(zip(net.outputs, k.groups["last"], strict=True))
        x = {n.name: self.rows[f"{n.name}:x"] for n in net.nodes}
        y = {n.name: self.rows[f"{n.name}:y"] for n in net.nodes}
        with e.loop(nrows, "r") as r:
            trial = e.load(order, r)
            k.forward_row(x, y, trial)
            for o in net.outputs:
                size = net.node(o).size
                term = self.loss.row(e, y[o], e.row(targets[o], trial, size), self.rows[f"{o}:dy"], size,
                                     divisors[o])
                e.add_to(totals[o], term)
                k.copy_row(y[o], e.row(last[o], trial, size), size)
            self.backward_row(x, y, step)
        loss = None
        for o in net.outputs:  # batch_loss: the sum over OUTPUT nodes of each one's loss
            value = b.load(totals[o])
            value = value if divisors[o] is None else b.fdiv(value, divisors[o])
            loss = value if loss is None else b.fadd(loss, value)
        e.store(loss, k.groups["losses"][0], kk)
        if self.batch > 1:
            self.apply_sums(step)

    def backward_row(self, x: dict[str, ir.Value], y: dict[str, ir.Value], step: StepScalars) -> None:
        """reference.backward for one trial; with B == 1 each weight is updated right after its last use."""
        e, net, b = self.e, self.net, self.e.b
        written = set(net.outputs)  # dy rows already holding a value (the loss gradient)
        for node in reversed(net.nodes):
            if node.name not in self.need_dx:
                continue
            n, dx = node.size, self.rows[f"{node.name}:dx"]
            TRANSFER_RULES[node.op].backward(e, x[node.name], y[node.name], self.rows[f"{node.name}:dy"], dx, n,
                                             self.k.params[node.name])
            bias = f"{node.name}.bias"
            if bias in self.learnable:
                self.gradient(bias, lambda i, j, dx=dx: e.load(dx, j), 1, n, step)
            for p in self.k.incoming[node.name]:
                ns, w = net.node(p.sender).size, self.k.weight[p.name]
                if p.sender in self.need_dx:  # grad_y[sender] += grad_x @ W.T, with W before its update
                    dys = self.rows[f"{p.sender}:dy"]
                    first = p.sender not in written
                    written.add(p.sender)
                    with e.loop(ns, "i") as i:
                        up = e.dot(dx, e.row(w, i, n), n)
                        e.store(up if first else b.fadd(e.load(dys, i), up), dys, i)
                if p.learnable:  # grad W = y_sender.T @ grad_x
                    ys = y[p.sender]
                    self.gradient(p.name, lambda i, j, ys=ys, dx=dx: b.fmul(e.load(ys, i), e.load(dx, j)),
                                  ns, n, step)

    def gradient(self, name: str, value: Callable[..., ir.Value], rows: int, cols: int,
                 step: StepScalars) -> None:
        """One trial's gradient of param ``name`` ((rows, cols); a bias is one row): apply or accumulate."""
        e, b = self.e, self.e.b
        with e.loop(rows, "i") as i:
            with e.loop(cols, "j") as j:
                g = value(i, j)
                idx = b.add(b.mul(i, e.i64(cols), flags=["nuw", "nsw"]), j) if rows > 1 else j
                if self.batch == 1:
                    self.update(name, idx, g, step)
                else:
                    acc = self.rows[f"grad:{name}"]
                    e.store(b.fadd(e.load(acc, idx), g), acc, idx)

    def apply_sums(self, step: StepScalars) -> None:
        """The optimizer step of every learnable array from its minibatch gradient sum (B > 1)."""
        e = self.e
        for name in self.k.sig.learnable:
            acc = self.rows[f"grad:{name}"]
            with e.loop(self.param_size[name], "i") as i:
                self.update(name, i, e.load(acc, i), step)

    def update(self, name: str, idx: ir.Value, g: ir.Value, step: StepScalars) -> None:
        """``param[idx]`` (and its optimizer state) after one step with gradient ``g``."""
        e = self.e
        w = e.at(self.k.weight[name], idx)
        state = tuple(e.at(s, idx) for s in self.state[name])
        e.b.store(self.opt.update(e, e.b.load(w), g, state, step, self.hyper), w)

    def zero(self, ptr: ir.Value, size: int) -> None:
        with self.e.loop(size, "i") as i:
            self.e.store(self.e.const(0.0), ptr, i)
