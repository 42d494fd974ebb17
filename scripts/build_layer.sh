#!/usr/bin/env bash
# Build the Lambda dependency layer (build/layer/python) from requirements.txt, without Docker:
# pip downloads the wheels built for the Lambda platform (Python 3.12, manylinux, arm64, matching
# Workflow.RUNTIME and Workflow.ARCHITECTURE in stacks/workflow.py) instead of the host's.
# Idempotent: skipped when requirements.txt has not changed since the last build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQUIREMENTS="${REQUIREMENTS:-$ROOT/requirements.txt}"
OUT="${LAYER_DIR:-$ROOT/build/layer}"
PYTHON="${PYTHON:-python3}"
# The python3.12 runtime runs on Amazon Linux 2023 (glibc 2.34), so manylinux_2_28 wheels load too;
# psycopg2-binary publishes its arm64 wheel only for manylinux_2_28.
PLATFORMS=(manylinux2014_aarch64 manylinux_2_28_aarch64)
STAMP="$OUT/.requirements.sha256"

wanted="$( (cat "$REQUIREMENTS"; echo "${PLATFORMS[*]}") | sha256sum | cut -d' ' -f1)"
if [[ -d "$OUT/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$wanted" ]]; then
  echo "layer up to date: $OUT"
  exit 0
fi

# Build next to the target and swap, so an interrupted build never leaves a half layer behind.
staging="$(mktemp -d "${OUT%/}.staging.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
"$PYTHON" -m pip install \
  --quiet --disable-pip-version-check --no-compile \
  --requirement "$REQUIREMENTS" \
  "${PLATFORMS[@]/#/--platform=}" --implementation cp --python-version 3.12 --only-binary=:all: \
  --target "$staging/python"
# boto3/botocore come with the Lambda runtime; pip pulls them in as dependencies of aws-xray-sdk.
rm -rf "$staging/python"/{boto3,botocore,s3transfer}{,-*.dist-info} "$staging/python/bin"
echo "$wanted" > "$staging/.requirements.sha256"

rm -rf "$OUT"
mkdir -p "$(dirname "$OUT")"
mv "$staging" "$OUT"
trap - EXIT
echo "layer built: $OUT ($(du -sh "$OUT" | cut -f1))"
