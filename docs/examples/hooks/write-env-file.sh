#!/usr/bin/env bash
# Keeps one KEY=value file per environment in a directory, for `docker run --env-file` or
# systemd's EnvironmentFile=. For `autoconfig-cache run --exec` (env mode); an ldactl hook too.
#
#   ENV_FILE_DIR     the directory (required; created with mode 0700)
#   ENV_FILE_PREFIX  prefix of the variable names written (default LD_)
#
# File: $ENV_FILE_DIR/<project>.<env>.env, mode 0600, replaced atomically:
#   LD_SDK_KEY=...  LD_MOBILE_KEY=...  LD_CLIENT_SIDE_ID=...  LD_PROJECT_KEY=...  LD_ENV_KEY=...
set -euo pipefail

kind="${LDAC_EVENT_KIND:-}"
dir="${ENV_FILE_DIR:?set ENV_FILE_DIR to the directory to write}"
prefix="${ENV_FILE_PREFIX:-LD_}"

case "$kind" in
  initialized) exit 0 ;;  # nothing per environment to do
  insert | update | delete) ;;
  "") echo "LDAC_EVENT_KIND is not set: run me from autoconfig-cache run --exec" >&2; exit 1 ;;
  *) echo "unknown event kind: $kind" >&2; exit 1 ;;
esac

project="${LDAC_PROJECT_KEY:?}"
env_key="${LDAC_ENV_KEY:?}"
# Project and environment keys are [A-Za-z0-9._-]; refuse anything that could leave the directory.
case "$project/$env_key" in
  */*/* | *..* ) echo "refusing unexpected key: $project/$env_key" >&2; exit 1 ;;
esac
file="$dir/$project.$env_key.env"

if [ "$kind" = delete ]; then
  rm -f -- "$file"
  echo "removed $file (environment $LDAC_ENV_ID deleted)"
  exit 0
fi

mkdir -p -m 0700 -- "$dir"
umask 077
tmp="$(mktemp "$dir/.tmp.XXXXXX")"
trap 'rm -f -- "$tmp"' EXIT
{
  printf '%sSDK_KEY=%s\n' "$prefix" "$LDAC_SDK_KEY"
  printf '%sMOBILE_KEY=%s\n' "$prefix" "$LDAC_MOBILE_KEY"
  printf '%sCLIENT_SIDE_ID=%s\n' "$prefix" "$LDAC_ENV_ID"
  printf '%sPROJECT_KEY=%s\n' "$prefix" "$project"
  printf '%sENV_KEY=%s\n' "$prefix" "$env_key"
} > "$tmp"
mv -f -- "$tmp" "$file"  # same directory: atomic
trap - EXIT
# Never print a key: our output goes to autoconfig-cache's log (masked, but still).
echo "wrote $file ($kind, version $LDAC_ENV_VERSION)"
