"""Run inside garak's venv: how many prompts each garak probe sends at its default settings (soft prompt cap
256), so the benchmark can state garak's default query cost (prompts x generations) without sending them all."""
import importlib
import json
import sys

from garak import _config

_config.load_base_config()
out = {}
for name in sys.argv[1:]:
    module, cls = name.rsplit(".", 1)
    try:
        probe = getattr(importlib.import_module(f"garak.probes.{module}"), cls)()
        out[name] = {"prompts": len(probe.prompts), "generations": _config.run.generations}
    except Exception as err:  # an offline failure is a result too
        out[name] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
print(json.dumps(out))
