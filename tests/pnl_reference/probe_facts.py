"""Print the measurements behind facts.md (PsyNeuLink 0.21, run with /work/pnlvenv/bin/python).

Sections: transfer-function formulas (Python vs PyTorch forward), defaults, default
matrices, enum members, errors, LLVMRun parity and timing.
"""
import time
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore")
import psyneulink as pnl  # noqa: E402

X = np.array([-1.0, 0.5, 2.0])
g, b, o, s, x0, lk = 2.0, 0.3, 0.1, 1.5, 0.2, 0.05
CTX = pnl.Context(execution_id=None)


def torch_forward(f):
    try:
        return f._gen_pytorch_fct(torch.device("cpu"), CTX)(torch.tensor(X, dtype=torch.float64)).numpy()
    except Exception as e:
        return f"{type(e).__name__}: {e}"


def check(name, f, py_formula, torch_formula):
    py = np.asarray(f(X), dtype=float).ravel()
    tf = torch_forward(f)
    print(f"{name:12s} python-formula err {np.max(np.abs(py - py_formula)):.1e}", end="  ")
    if isinstance(tf, str):
        print("torch:", tf)
    else:
        print(f"torch-formula err {np.max(np.abs(tf.ravel() - torch_formula)):.1e}")


print("== transfer functions on x=[-1,0.5,2] with gain=2,bias=.3,offset=.1,scale=1.5,x_0=.2,leak=.05")
check("Linear", pnl.Linear(slope=g, intercept=b, scale=s, offset=o), s * (g * X + b) + o, s * (g * X + b) + o)
check("Logistic", pnl.Logistic(gain=g, bias=b, offset=o, scale=s, x_0=x0),
      s / (1 + np.exp(-g * (X + b - x0))) + o, s / (1 + np.exp(-g * (X + b))) + o)
check("Tanh", pnl.Tanh(gain=g, bias=b, offset=o, scale=s, x_0=x0),
      s * np.tanh(g * (X + b - x0) + o), np.tanh(g * X))
check("ReLU", pnl.ReLU(gain=g, bias=b, leak=lk, scale=s, offset=o),
      s * np.maximum(g * (X - b), lk * g * (X - b)) + o, g * np.maximum(X - b, 0) + lk * np.minimum(X - b, 0))
check("Exponential", pnl.Exponential(rate=g, bias=b, scale=s, offset=o), s * np.exp(g * X + b) + o, None)
e = np.exp(g * X)
check("SoftMax", pnl.SoftMax(gain=g), e / e.sum(), e / e.sum())
check("Identity", pnl.Identity(), X, X)
print("SoftMax 2D input (per_item):", pnl.SoftMax()(np.array([[1.0, 2.0], [3.0, 5.0]])).tolist())

print("== defaults")
for cls, ks in [(pnl.Linear, ["slope", "intercept", "scale", "offset"]),
                (pnl.Logistic, ["gain", "bias", "x_0", "scale", "offset"]),
                (pnl.Tanh, ["gain", "bias", "x_0", "scale", "offset"]),
                (pnl.ReLU, ["gain", "bias", "leak", "scale", "offset"]),
                (pnl.Exponential, ["rate", "bias", "scale", "offset"]),
                (pnl.SoftMax, ["gain", "output", "per_item", "mask_threshold"])]:
    f = cls()
    print(cls.__name__, {k: (getattr(f.defaults, k).item() if isinstance(getattr(f.defaults, k), np.ndarray)
                             else getattr(f.defaults, k)) for k in ks})
try:
    pnl.TransferMechanism(name="probe_size", size=3)
except Exception as e:
    print("TransferMechanism(size=3):", type(e).__name__, str(e).replace("\n", " "))
m = pnl.TransferMechanism(name="probe_shapes", input_shapes=3)
print("TransferMechanism(input_shapes=3): function", type(m.function).__name__, "value", m.defaults.value.tolist())

print("== default MappingProjection matrix")
for cls in (pnl.Composition, pnl.AutodiffComposition):
    for a, bb in ((3, 2), (3, 3)):
        A = pnl.TransferMechanism(name=f"dA{cls.__name__}{a}{bb}", input_shapes=a)
        B = pnl.TransferMechanism(name=f"dB{cls.__name__}{a}{bb}", input_shapes=bb)
        c = cls(pathways=[[A, B]], name=f"dc{cls.__name__}{a}{bb}")
        print(cls.__name__, (a, bb), np.asarray(c.projections[0].parameters.matrix.get()).tolist())

print("== enums")
print("Loss:", [(m.name, m.value) for m in pnl.Loss], "SUM is L0:", pnl.Loss.SUM is pnl.Loss.L0)
print("ExecutionMode:", list(pnl.ExecutionMode.__members__))
print("NodeRole:", list(pnl.NodeRole.__members__))

print("== errors")
try:
    A = pnl.TransferMechanism(name="eA", input_shapes=3)
    B = pnl.TransferMechanism(name="eB", input_shapes=2)
    pnl.MappingProjection(name="ep", sender=A, receiver=B, matrix=np.ones((2, 3)))
except Exception as e:
    print("wrong matrix shape:", type(e).__name__, e)

print("== LLVMRun vs PyTorch, XOR 2-10-1 timing")
XX = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
TT = np.array([[0.0], [1.0], [1.0], [0.0]])


def xor(tag, nh=10):
    rs = np.random.RandomState(0)
    A = pnl.TransferMechanism(name=f"xA{tag}", input_shapes=2)
    H = pnl.TransferMechanism(name=f"xH{tag}", input_shapes=nh, function=pnl.Logistic)
    out = pnl.TransferMechanism(name=f"xO{tag}", input_shapes=1, function=pnl.Logistic)
    p1 = pnl.MappingProjection(name=f"xp1{tag}", sender=A, receiver=H, matrix=rs.uniform(-1, 1, (2, nh)))
    p2 = pnl.MappingProjection(name=f"xp2{tag}", sender=H, receiver=out, matrix=rs.uniform(-1, 1, (nh, 1)))
    return pnl.AutodiffComposition(pathways=[[A, p1, H, p2, out]], name=f"xor{tag}", learning_rate=0.5), A, out, p1


W = {}
for mode in ("PyTorch", "LLVMRun"):
    c, A, out, p1 = xor(mode)
    em = getattr(pnl.ExecutionMode, mode)
    t0 = time.time()
    c.learn(inputs={A: XX}, targets={out: TT}, epochs=1, execution_mode=em)
    t1 = time.time()
    c.learn(inputs={A: XX}, targets={out: TT}, epochs=100, execution_mode=em)
    t2 = time.time()
    W[mode] = p1.parameters.matrix.get(c)
    print(f"{mode}: first learn() call {t1 - t0:.2f}s; 4 trials x 100 epochs {t2 - t1:.3f}s "
          f"= {(t2 - t1) / 400 * 1e6:.0f} us/trial")
print("max |W_PyTorch - W_LLVMRun| after 101 epochs:", float(np.max(np.abs(W["PyTorch"] - W["LLVMRun"]))))
