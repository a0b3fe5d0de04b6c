#!/usr/bin/env bash
# Package the whole stack with no AWS account, then lint the CloudFormation it produced.
#
#   bash scripts/package-offline.sh [extra `sls package` options, e.g. --param="kms=true"]
#
# Output: .serverless/ (function zips, cloudformation-template-update-stack.json), exactly
# what `npx sls deploy` would upload; SLS_PACKAGE_DIR=<dir> writes there instead. Run one
# at a time per checkout: whatever the output folder, sls builds every zip in the
# checkout's own .serverless/ and deletes that folder first (the tests hold one lock for
# it: tests/conftest_stack.py SLS_LOCK).
# The layer zips the template references are built first when missing or stale
# (plugins/build-layers.js runs `layers/build.sh --if-stale`; needs PyPI, about 20 s).
# Exits non-zero if packaging fails or cfn-lint reports any error or warning.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# No account is needed, but the AWS SDK wants some credentials and would otherwise
# probe the EC2 instance metadata service. Real ones in the environment win.
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-offline}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-offline}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_EC2_METADATA_DISABLED=true
# plugins/offline-package.js: skip comparing layers with a deployed stack (DescribeStacks).
export VIDSIFT_OFFLINE_PACKAGE=1

if [[ ! -x node_modules/.bin/sls ]]; then
  echo "== npm ci (serverless CLI)"
  npm ci --no-audit --no-fund --loglevel=error
fi

CFN_LINT="${CFN_LINT:-$(command -v cfn-lint || echo .venv/bin/cfn-lint)}"

OUT="${SLS_PACKAGE_DIR:-.serverless}"
echo "== sls package --stage dev --region us-east-1 --package $OUT $*"
# Milliseconds from Python: BSD date (macOS) has no %N.
now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }
start=$(now_ms)
rm -rf "$OUT"
npx sls package --stage dev --region us-east-1 --package "$OUT" "$@"
elapsed_ms=$(( $(now_ms) - start ))
printf '== packaged in %d.%01d s\n' $((elapsed_ms / 1000)) $((elapsed_ms % 1000 / 100))

TEMPLATE="$OUT/cloudformation-template-update-stack.json"
echo "== cfn-lint $TEMPLATE"
# W3005 (DependsOn already implied by a GetAtt) comes from the framework itself: it
# makes every function DependsOn its role and log group. Every other finding fails.
"$CFN_LINT" --ignore-checks W3005 -- "$TEMPLATE"
echo "== cfn-lint: no errors, no warnings"
