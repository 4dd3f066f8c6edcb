"""The values of PsyNeuLink 0.21's module-level names that mdfx mirrors (keyword constants,
CostFunctions), and what `from psyneulink import *` brings. Measured, not part of the suite:

    /tmp/pnlvenv/bin/python tests/pnl_reference/probe_names.py > /tmp/names.json
"""

import enum
import json
import sys
import warnings

warnings.simplefilter("ignore")
import psyneulink as pnl  # noqa: E402

names = sys.argv[1:] or sorted(n for n in dir(pnl) if n.isupper() or n[:1].isupper())
out: dict[str, object] = {}
for n in names:
    v = getattr(pnl, n, None)
    if isinstance(v, (str, int, float)) and not isinstance(v, bool):
        out[n] = {"kind": type(v).__name__ if not isinstance(v, enum.Enum) else "enum", "value": v}
    elif isinstance(v, type) and issubclass(v, enum.Enum):
        out[n] = {"kind": "enum class", "base": [b.__name__ for b in v.__mro__[1:3]],
                  "members": {m.name: m.value for m in v}}
    elif v is None:
        out[n] = {"kind": "missing"}
    else:
        out[n] = {"kind": type(v).__name__}
star: dict = {}
exec("from psyneulink import *", star)  # noqa: S102  (what a star-import script sees)
out["__star__"] = {"count": len([k for k in star if not k.startswith("__")])}
print(json.dumps(out, indent=0, default=str))
