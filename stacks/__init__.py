"""CDK code for the restore runbook: typed settings, the workflow registry, shared builders, one stack.

The stack imports the Lambda code's contract (`restore_runbook.contract`, `restore_runbook.settings`),
so `lambdas/` is made importable here, whoever imports `stacks` (app.py, the CDK CLI, tests, restorectl).
"""

import sys
from pathlib import Path

_LAMBDAS = str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.insert(0, _LAMBDAS)
