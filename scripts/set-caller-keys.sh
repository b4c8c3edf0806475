#!/usr/bin/env bash
# Create, rotate or revoke the NAMED FUNCTION KEYS of soc-responder's machine callers
# (Sentinel playbook, Defender workflow automation, each SIEM forwarder) and keep each
# one in its own Key Vault secret, without the value ever reaching the screen, a file
# or the shell history. docs/access-setup.md explains the design.
#
# Usage:
#   scripts/set-caller-keys.sh --deployment <az deployment sub name> [options]
#
# Options:
#   --caller NAME    only this caller (e.g. sentinel-playbook, siem-splunk); repeatable
#   --rotate         give the selected callers a NEW key value (default: create missing
#                    keys only, leave existing ones alone)
#   --revoke         delete the selected callers' keys and disable their secrets: the
#                    caller is refused (401) from now on; needs --caller
#   --dry-run        print what would happen, change nothing
#
# Each caller's key is a per-function key of the one function it posts to (from the
# callerKeys output of infra/main.bicep): the Sentinel playbook's key opens
# /api/incidents/sentinel and nothing else. Keys exist only once the code is published
# (functions are indexed then), so run this after publishing, and again whenever a SIEM
# forwarder is added to siemForwarderNames.
#
# Needs: az CLI logged in as someone with Website Contributor (or Contributor) on the
# Function App and Key Vault Secrets Officer on the vault (SOC_KEYVAULT_SECRETS_OFFICER_ID).
# Idempotent: without --rotate, a caller whose secret exists is skipped.
set -euo pipefail

deployment_name=""
callers=()
mode="create"
dry_run=0

die() { echo "set-caller-keys: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --deployment) deployment_name="${2:-}"; shift 2 ;;
    --caller) callers+=("${2:-}"); shift 2 ;;
    --rotate) mode="rotate"; shift ;;
    --revoke) mode="revoke"; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

command -v az >/dev/null 2>&1 || die "the az CLI is required"
[[ -n "$deployment_name" ]] || die "give --deployment"
[[ "$mode" != "revoke" || ${#callers[@]} -gt 0 ]] || die "--revoke needs --caller: revoking every caller at once is never what you want"

out() {
  az deployment sub show --name "$deployment_name" --query "properties.outputs.$1.value" --output tsv
}
rg="$(out resourceGroupName)"
app="$(out functionAppName)"
vault="$(out keyVaultName)"
[[ -n "$rg" && -n "$app" && -n "$vault" ]] || die "deployment $deployment_name lacks resourceGroupName / functionAppName / keyVaultName outputs"

# One line per caller: caller, function, key name, secret name (tab-separated).
rows="$(az deployment sub show --name "$deployment_name" \
  --query "properties.outputs.callerKeys.value[].[caller, functionName, keyName, secretName]" --output tsv)"
[[ -n "$rows" ]] || die "deployment $deployment_name has no callerKeys output (deploy infra/main.bicep first)"

known=()
while IFS=$'\t' read -r caller _ _ _; do known+=("$caller"); done <<<"$rows"
for wanted in "${callers[@]}"; do
  [[ " ${known[*]} " == *" $wanted "* ]] || die "unknown caller '$wanted' (known: ${known[*]})"
done

selected() {
  [[ ${#callers[@]} -eq 0 ]] && return 0
  [[ " ${callers[*]} " == *" $1 "* ]]
}

while IFS=$'\t' read -r caller function_name key_name secret_name; do
  selected "$caller" || continue
  exists="$(az keyvault secret list --vault-name "$vault" \
    --query "[?name=='$secret_name'].name | [0]" --output tsv)"
  case "$mode" in
    revoke)
      if [[ "$dry_run" -eq 1 ]]; then echo "  $caller: would revoke key $key_name of $function_name (dry run)"; continue; fi
      az functionapp function keys delete --resource-group "$rg" --name "$app" \
        --function-name "$function_name" --key-name "$key_name" --output none
      if [[ -n "$exists" ]]; then
        az keyvault secret set-attributes --vault-name "$vault" --name "$secret_name" --enabled false --output none
      fi
      echo "  $caller: revoked (key $key_name of $function_name deleted, secret $secret_name disabled)"
      continue ;;
    create)
      if [[ -n "$exists" ]]; then echo "  $caller: already set (secret $secret_name); --rotate to replace"; continue; fi ;;
  esac
  if [[ "$dry_run" -eq 1 ]]; then echo "  $caller: would set key $key_name of $function_name into $secret_name (dry run)"; continue; fi
  # The new value goes from the Functions API straight into Key Vault through a pipe.
  az functionapp function keys set --resource-group "$rg" --name "$app" \
      --function-name "$function_name" --key-name "$key_name" --query value --output tsv \
    | tr -d '\n' \
    | az keyvault secret set --vault-name "$vault" --name "$secret_name" --file /dev/stdin \
        --content-type "function key $key_name of $function_name" --output none
  if [[ "$mode" == "rotate" ]]; then
    echo "  $caller: rotated (key $key_name of $function_name, secret $secret_name)"
  else
    echo "  $caller: created (key $key_name of $function_name, secret $secret_name)"
  fi
done <<<"$rows"
