#!/usr/bin/env bash
# Syncs each environment's SDK key, mobile key and client-side id into HashiCorp Vault KV v2.
# For `autoconfig-cache run --exec` (env mode); in the style of ldactl's hooks/write-vault-kv.sh.
#
#   VAULT_ADDR, VAULT_TOKEN (or any auth the vault CLI reads)   required
#   VAULT_MOUNT_PATH  the KV v2 mount (default secret)
#   SECRET_PREFIX     path prefix (default launchdarkly)
#   VAULT_DELETE      on delete: mark (default: custom metadata deleted=true) or destroy
#
# Secret: $VAULT_MOUNT_PATH/$SECRET_PREFIX/<project>/<env>, keys sdk-key, mobile-key, client-id,
# written in ONE `vault kv put` (each put replaces the whole secret version).
set -euo pipefail

kind="${LDAC_EVENT_KIND:-}"
: "${VAULT_ADDR:?set VAULT_ADDR}"
mount="${VAULT_MOUNT_PATH:-secret}"
prefix="${SECRET_PREFIX:-launchdarkly}"

case "$kind" in
  initialized) exit 0 ;;
  insert | update | delete) ;;
  "") echo "LDAC_EVENT_KIND is not set: run me from autoconfig-cache run --exec" >&2; exit 1 ;;
  *) echo "unknown event kind: $kind" >&2; exit 1 ;;
esac

project="${LDAC_PROJECT_KEY:?}"
env_key="${LDAC_ENV_KEY:?}"
path="$prefix/$project/$env_key"

if [ "$kind" = delete ]; then
  if [ "${VAULT_DELETE:-mark}" = destroy ]; then
    vault kv metadata delete -mount="$mount" "$path"
    echo "destroyed $mount/$path (environment $LDAC_ENV_ID deleted)"
  else
    vault kv metadata put -mount="$mount" \
      -custom-metadata=deleted=true -custom-metadata="deleted-at=$(date +%s)" "$path"
    echo "marked $mount/$path deleted"
  fi
  exit 0
fi

# Keys on stdin as JSON, never in argv (`ps` shows argv to every local user).
printf '{"sdk-key":"%s","mobile-key":"%s","client-id":"%s"}' \
  "$LDAC_SDK_KEY" "$LDAC_MOBILE_KEY" "$LDAC_ENV_ID" |
  vault kv put -mount="$mount" "$path" -
# An insert after a delete: clear the mark.
vault kv metadata put -mount="$mount" -custom-metadata=deleted=false "$path" > /dev/null
echo "wrote $mount/$path ($kind, version $LDAC_ENV_VERSION)"
