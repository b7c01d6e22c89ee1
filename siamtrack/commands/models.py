"""siamtrack models: the known models, their weights files and whether those are present."""
from __future__ import annotations

import json

from ..zoo import list_models

HELP = "list the models, their weights files and whether they are present"


def add_arguments(p):
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args):
    rows = list_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    print(f"{'model':<{width}}  {'weights':<8}  file")
    for r in rows:
        print(f"{r['name']:<{width}}  {'present' if r['present'] else 'missing':<8}  {r['weights']}")
    return 0
