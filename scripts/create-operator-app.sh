#!/usr/bin/env bash
# Create (or bring up to date) the OPERATOR app registration that App Service
# Authentication signs SOC analysts, leads and auditors in with, and its three app
# roles. Its application (client) id is the operatorAppClientId parameter of
# infra/main.bicep. docs/access-setup.md explains sign-in and roles.
#
# Usage:
#   scripts/create-operator-app.sh --redirect-host <function app host name> [options]
#
# Options:
#   --name NAME            display name (default: soc-responder operators)
#   --redirect-host HOST   the Function App's host name (functionAppHostName output);
#                          the sign-in redirect is https://HOST/.auth/login/aad/callback
#   --dry-run              print what would be done, change nothing
#
# App roles (assigned to users or, better, groups; the code checks them per route):
#   Responder  ack, call, priority                     (SOC analysts)
#   Approver   approve, release, bulk approvals,       (SOC leads)
#              suppressions
#   Auditor    read incidents, verify, review,         (auditors; Responder and Approver
#              evidence export, reports, preflight      read too)
#
# Single-tenant (the SOC's own staff only); app role assignment required, so nobody
# without one of the roles gets a token for it. No secret or certificate is created:
# App Service Authentication validates the bearer tokens operators' tools present, and
# its browser sign-in uses ID tokens (ID token issuance on), which need no secret.
#
# Needs: az CLI logged in as an Application Administrator (or Cloud Application
# Administrator) of the SOC tenant. Idempotent: an existing registration with the same
# display name is updated; existing app role ids are kept.
set -euo pipefail

name="soc-responder operators"
redirect_host=""
dry_run=0

die() { echo "create-operator-app: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) name="${2:-}"; shift 2 ;;
    --redirect-host) redirect_host="${2:-}"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
command -v az >/dev/null 2>&1 || die "the az CLI is required"
[[ -n "$redirect_host" ]] || die "give --redirect-host (the functionAppHostName output)"
[[ "$redirect_host" =~ ^[A-Za-z0-9.-]+$ ]] || die "redirect host '$redirect_host' is not a host name"

# value|description; role ids are kept when the role exists, new ones are random.
roles=(
  "Responder|Acknowledge incidents, request calls and change priority (SOC analysts)."
  "Approver|Approve or reject held containment, release, bulk approvals, suppressions (SOC leads)."
  "Auditor|Read incidents, verify chains, reviews, evidence export and reports (auditors)."
)

app_id="$(az ad app list --display-name "$name" --query "[0].appId" --output tsv)"
if [[ -z "$app_id" ]]; then
  if [[ "$dry_run" -eq 1 ]]; then
    echo "would create app registration '$name' with app roles Responder, Approver, Auditor (dry run)"
    exit 0
  fi
  app_id="$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg \
    --web-redirect-uris "https://$redirect_host/.auth/login/aad/callback" \
    --enable-id-token-issuance true --query appId --output tsv)"
  echo "created app registration '$name' ($app_id)"
else
  echo "app registration '$name' exists ($app_id)"
fi

new_guid() { cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen | tr 'A-Z' 'a-z'; }
json="["
for entry in "${roles[@]}"; do
  value="${entry%%|*}"; description="${entry#*|}"
  id="$(az ad app show --id "$app_id" --query "appRoles[?value=='$value'].id | [0]" --output tsv)"
  [[ -n "$id" ]] || id="$(new_guid)"
  [[ "$json" == "[" ]] || json+=","
  json+="{\"allowedMemberTypes\": [\"User\"], \"description\": \"$description\", \"displayName\": \"$value\", \"id\": \"$id\", \"isEnabled\": true, \"value\": \"$value\"}"
done
json+="]"

if [[ "$dry_run" -eq 1 ]]; then
  echo "would set app roles, redirect URI and api://$app_id on $app_id (dry run)"
  exit 0
fi
roles_file="$(mktemp)"
trap 'rm -f "$roles_file"' EXIT
printf '%s\n' "$json" > "$roles_file"
az ad app update --id "$app_id" --app-roles "@$roles_file" \
  --identifier-uris "api://$app_id" \
  --web-redirect-uris "https://$redirect_host/.auth/login/aad/callback" \
  --enable-id-token-issuance true
echo "app roles set: Responder, Approver, Auditor"

# The enterprise application (service principal): role assignment required.
sp_id="$(az ad sp list --filter "appId eq '$app_id'" --query "[0].id" --output tsv)"
if [[ -z "$sp_id" ]]; then
  sp_id="$(az ad sp create --id "$app_id" --query id --output tsv)"
  echo "created service principal $sp_id"
fi
az ad sp update --id "$app_id" --set appRoleAssignmentRequired=true
echo "app role assignment required on $sp_id"

cat <<EOF2

Next:
  1. Deploy with operatorAppClientId = $app_id (export SOC_OPERATOR_APP_CLIENT_ID=$app_id
     if your parameter file reads it), then sign in at https://$redirect_host/.auth/login/aad
  2. Assign the roles to Entra groups (Enterprise applications > '$name' > Users and
     groups), or:
       az rest --method POST --uri "https://graph.microsoft.com/v1.0/servicePrincipals/$sp_id/appRoleAssignedTo" \\
         --body '{"principalId": "<group object id>", "resourceId": "$sp_id", "appRoleId": "<role id>"}'
EOF2
