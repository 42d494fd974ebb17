"""Where the project's shared files live, so the CLI works from any directory."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATEMACHINES = ROOT / "statemachines"
FUNCTIONS_MANIFEST = STATEMACHINES / "functions.json"
LAMBDAS = ROOT / "lambdas"
CDK_JSON = ROOT / "cdk.json"
