#!/usr/bin/env bash
# Mirrors the SpiceDB image and the drain sidecar image into this account's
# Amazon ECR, for tasks in private subnets without NAT (they can reach ECR
# through VPC endpoints, not public registries). Prints the parameter
# overrides that make the stack use the mirrored images.
#
#   bash scripts/mirror-images.sh [options]
#
# Options:
#   --region REGION       ECR region (default: $AWS_REGION, else the AWS CLI's region)
#   --prefix PREFIX       ECR repository prefix (default: spicedb-ecs)
#   --spicedb IMAGE       source SpiceDB image (default: SpiceDBImage's default in template.yaml)
#   --sidecar IMAGE       source sidecar image (default: DrainSidecarImage's default in template.yaml)
#   --single-arch PLATFORM
#                         copy one platform only (e.g. linux/arm64) with docker pull/tag/push,
#                         for Docker installations without buildx
#   --dry-run             print the copies it would make (no AWS or Docker calls)
#
# By default every platform of the (multi-arch) source is copied, registry to
# registry, with `docker buildx imagetools create` (nothing is pulled into the
# local image store), so the stack's CpuArchitecture can be ARM64 or X86_64.
#
# Needs: the AWS CLI v2 with credentials allowed to create ECR repositories
# and push, and Docker (with the buildx plugin unless --single-arch).
# Re-running is harmless: a tag already in ECR is left as it is (the
# repositories are created with immutable tags).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

die() {
  printf 'mirror-images: %s\n' "$*" >&2
  exit 1
}

# The Default of a parameter in template.yaml (the one place the versions are pinned).
template_default() {
  awk -v name="  $1:" '
    $0 == name { found = 1; next }
    found && /^  [A-Za-z]/ { exit }
    found && $1 == "Default:" { sub(/^ *Default: */, ""); gsub(/'\''/, ""); print; exit }
  ' "$ROOT/template.yaml"
}

region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
prefix="spicedb-ecs"
spicedb_source=""
sidecar_source=""
single_arch=""
dry_run=""

while [ $# -gt 0 ]; do
  case "$1" in
    --region) region="${2:?--region needs a value}"; shift 2 ;;
    --prefix) prefix="${2:?--prefix needs a value}"; shift 2 ;;
    --spicedb) spicedb_source="${2:?--spicedb needs an image}"; shift 2 ;;
    --sidecar) sidecar_source="${2:?--sidecar needs an image}"; shift 2 ;;
    --single-arch) single_arch="${2:?--single-arch needs a platform such as linux/arm64}"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

[ -n "$spicedb_source" ] || spicedb_source="$(template_default SpiceDBImage)"
[ -n "$sidecar_source" ] || sidecar_source="$(template_default DrainSidecarImage)"
[ -n "$spicedb_source" ] || die "could not read SpiceDBImage's default from template.yaml; pass --spicedb"
[ -n "$sidecar_source" ] || die "could not read DrainSidecarImage's default from template.yaml; pass --sidecar"

# Sets ref_name and ref_tag from an image reference (registry/namespace/name:tag);
# refuses digests and latest. Called in this shell, so that die stops the script.
split_reference() {
  local source="$1" path
  path="${source##*/}"
  case "$path" in
    *@*) die "$source: give a tag (name:tag), not a digest; the digest is printed after the copy" ;;
    *:*) ;;
    *) die "$source: give an explicit tag (never latest)" ;;
  esac
  ref_name="${path%%:*}"
  ref_tag="${path#*:}"
  [ "$ref_tag" != "latest" ] || die "$source: pin a release tag, not latest"
}

# Both references are checked before anything is created.
split_reference "$spicedb_source"
split_reference "$sidecar_source"

if [ -n "$dry_run" ]; then
  for source in "$spicedb_source" "$sidecar_source"; do
    split_reference "$source"
    printf '%s -> ACCOUNT.dkr.ecr.%s.amazonaws.com/%s/%s:%s (%s)\n' "$source" "${region:-REGION}" "$prefix" "$ref_name" "$ref_tag" \
      "${single_arch:-all platforms}"
  done
  exit 0
fi

command -v aws >/dev/null 2>&1 || die "the AWS CLI is not on PATH"
command -v docker >/dev/null 2>&1 || die "docker is not on PATH"
if [ -z "$single_arch" ]; then
  docker buildx version >/dev/null 2>&1 || die "docker buildx is not available: install the buildx plugin, or use --single-arch linux/arm64 (or linux/amd64)"
fi
[ -n "$region" ] || region="$(aws configure get region || true)"
[ -n "$region" ] || die "no region: pass --region or set AWS_REGION"

account="$(aws sts get-caller-identity --query Account --output text)"
case "$region" in
  cn-*) registry="$account.dkr.ecr.$region.amazonaws.com.cn" ;;
  *) registry="$account.dkr.ecr.$region.amazonaws.com" ;;
esac

printf '==> logging in to %s\n' "$registry"
aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry" >/dev/null

# mirror SOURCE: copies SOURCE to $registry/$prefix/NAME:TAG; prints the target.
mirror() {
  local source="$1" name tag repository target
  split_reference "$source"
  name="$ref_name"
  tag="$ref_tag"
  repository="$prefix/$name"
  target="$registry/$repository:$tag"

  if ! aws ecr describe-repositories --region "$region" --repository-names "$repository" >/dev/null 2>&1; then
    printf '==> creating ECR repository %s\n' "$repository" >&2
    aws ecr create-repository --region "$region" --repository-name "$repository" \
      --image-tag-mutability IMMUTABLE \
      --image-scanning-configuration scanOnPush=true \
      --encryption-configuration encryptionType=AES256 >/dev/null
  fi

  if aws ecr describe-images --region "$region" --repository-name "$repository" --image-ids "imageTag=$tag" >/dev/null 2>&1; then
    printf '==> %s is already in ECR (immutable tag): kept\n' "$target" >&2
  elif [ -n "$single_arch" ]; then
    printf '==> copying %s (%s only) to %s\n' "$source" "$single_arch" "$target" >&2
    docker pull --platform "$single_arch" "$source" >&2
    docker tag "$source" "$target"
    docker push "$target" >&2
  else
    printf '==> copying %s (all platforms) to %s\n' "$source" "$target" >&2
    docker buildx imagetools create --tag "$target" "$source" >&2
  fi
  printf '%s' "$target"
}

# The digest ECR holds for TARGET (the manifest list of a multi-arch copy).
digest_of() {
  local target="$1" repository tag
  repository="${target#*/}"
  repository="${repository%:*}"
  tag="${target##*:}"
  aws ecr describe-images --region "$region" --repository-name "$repository" --image-ids "imageTag=$tag" \
    --query 'imageDetails[0].imageDigest' --output text
}

spicedb_target="$(mirror "$spicedb_source")"
sidecar_target="$(mirror "$sidecar_source")"
spicedb_digest="$(digest_of "$spicedb_target")"
sidecar_digest="$(digest_of "$sidecar_target")"

if [ -z "$single_arch" ]; then
  printf '\n==> platforms of the mirrored SpiceDB image\n'
  docker buildx imagetools inspect "$spicedb_target" | sed -n '/^Manifests:/,$p' | grep -E '^\s+Platform:' || true
fi

cat <<EOF

Mirrored. Use the images by digest (the digest of the multi-arch manifest list):

  SpiceDBImage=${spicedb_target%:*}@${spicedb_digest}
  DrainSidecarImage=${sidecar_target%:*}@${sidecar_digest}

Add both to parameter_overrides in samconfig.toml (an option
--parameter-overrides on the command line replaces that list). The tasks pull
them through the ecr.api, ecr.dkr and S3 endpoints of templates/vpc.yaml.
EOF
