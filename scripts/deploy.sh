#!/usr/bin/env bash
# Builds and deploys the SpiceDB stack with the SAM CLI.
#
#   bash scripts/deploy.sh [CONFIG_ENV] [sam deploy options...]
#
#   bash scripts/deploy.sh                       # [default] of samconfig.toml: production
#   bash scripts/deploy.sh quickstart            # [quickstart]: one task, memory datastore
#   bash scripts/deploy.sh default --guided      # first deploy: asks for VPC, subnets, clients
#   bash scripts/deploy.sh default --parameter-overrides file://schema.yaml ...
#
# Needs: AWS credentials (any method the AWS CLI accepts), the SAM CLI, Node.js
# >= 22 and the project's dependencies (`npm ci`).
#
# The build: `sam build --build-in-source` alone runs `npm install --omit=dev`
# (an `npm update`) inside the repository, which prunes the devDependencies
# (esbuild among them, so the build then fails) and rewrites node_modules;
# without it SAM copies the whole repository once per function and installs
# the dependencies again each time. Passing a manifest path that does not
# exist makes SAM bundle the sources as they are ("package.json file not
# found. Bundling source without installing dependencies."): esbuild runs in
# the repository with its node_modules, exactly as scripts/build.ts does, and
# writes the bundles to the build directory only.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CONFIG_ENV="default"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  CONFIG_ENV="$1"
  shift
fi

BUILD_DIR="${SAM_BUILD_DIR:-$ROOT/.aws-sam/build}"

die() {
  printf 'deploy: %s\n' "$*" >&2
  exit 1
}

command -v sam >/dev/null 2>&1 || die "the SAM CLI is not on PATH (https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/install-sam-cli.html)"
command -v node >/dev/null 2>&1 || die "Node.js is not on PATH (the functions run on nodejs22.x; install Node.js 22 or later)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 22 ] || die "Node.js $node_major found; 22 or later is needed"
[ -x "$ROOT/node_modules/.bin/esbuild" ] || die "node_modules/.bin/esbuild is missing: run \`npm ci\` first"

# Where SAM looks for esbuild after node_modules/.bin.
export PATH="$ROOT/node_modules/.bin:$PATH"

manifest_dir="$(mktemp -d)"
trap 'rm -rf "$manifest_dir"' EXIT

printf '==> sam validate --lint\n'
sam validate --lint --config-env "$CONFIG_ENV"

printf '==> sam build (esbuild bundles into %s)\n' "$BUILD_DIR"
sam build \
  --config-env "$CONFIG_ENV" \
  --build-in-source \
  --manifest "$manifest_dir/no-package.json" \
  --build-dir "$BUILD_DIR"

printf '==> sam deploy --config-env %s %s\n' "$CONFIG_ENV" "$*"
sam deploy --config-env "$CONFIG_ENV" --template-file "$BUILD_DIR/template.yaml" "$@"

printf '\n==> stack outputs (ZedContextCommand creates a zed context; it reads the key when you run it)\n'
sam list stack-outputs --config-env "$CONFIG_ENV" --output table || true
