#!/usr/bin/env bash
# Create (or bring up to date) the SOC's MULTI-TENANT app registration through which
# soc-responder calls Microsoft Graph in partners' tenants (disable users and service
# principals, revoke sessions), and its federated identity credential that lets the
# app's user-assigned managed identity sign in as that app: no secret, no certificate.
# docs/onboarding.md explains the whole onboarding; each partner then consents once.
#
# Usage:
#   scripts/create-soc-app.sh --deployment <az deployment sub name> [options]
#   scripts/create-soc-app.sh --principal-id <object id of the app identity> [options]
#
# Options:
#   --tenant-id ID             the SOC's tenant (default: the tenant az is logged in to)
#   --name NAME                display name (default: soc-responder partner access)
#   --all-service-principals   request Application.ReadWrite.All instead of
#                              Application.ReadWrite.OwnedBy (see below; dangerous)
#   --no-service-principals    request neither: service principals are never disabled
#   --dry-run                  print what would be done, change nothing
#
# Microsoft Graph APPLICATION permissions requested (what each partner consents to):
#   User.Read.All                  read a user (accountEnabled, ids) before acting, so
#                                  containment and release are idempotent and protected
#                                  identities are matched
#   User.EnableDisableAccount.All  PATCH accountEnabled on users: with User.Read.All the
#                                  least-privileged pair for that property
#   User.RevokeSessions.All        POST /users/{id}/revokeSignInSessions
#   Application.ReadWrite.OwnedBy  PATCH accountEnabled on service principals the app
#                                  owns in the partner's tenant (the partner makes the
#                                  app's service principal an owner of those it allows);
#                                  Application.ReadWrite.All reaches every one, and can
#                                  add credentials to any application: a tenant takeover
#                                  path, so only with --all-service-principals
# No Mail.Send: mail and calls stay in the SOC's own tenant.
#
# The federated identity credential (the managed identity as the app's credential):
#   issuer    https://login.microsoftonline.com/<SOC tenant id>/v2.0
#   subject   the managed identity's principal (object) id
#   audience  api://AzureADTokenExchange
#
# Needs: az CLI logged in to the SOC tenant as an Application Administrator (or Cloud
# Application Administrator). Idempotent: the registration is found by display name,
# the permissions are set to exactly the list above, the credential is created once.
set -euo pipefail

GRAPH_APP_ID="00000003-0000-0000-c000-000000000000"
FIC_NAME="soc-responder-managed-identity"
name="soc-responder partner access"
principal_id=""
deployment_name=""
tenant_id=""
service_principal_mode="owned"
dry_run=0

die() { echo "create-soc-app: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
is_guid() { [[ "$1" =~ ^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$ ]]; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --principal-id) principal_id="${2:-}"; shift 2 ;;
    --deployment) deployment_name="${2:-}"; shift 2 ;;
    --tenant-id) tenant_id="${2:-}"; shift 2 ;;
    --name) name="${2:-}"; shift 2 ;;
    --all-service-principals) service_principal_mode="all"; shift ;;
    --no-service-principals) service_principal_mode="none"; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
command -v az >/dev/null 2>&1 || die "the az CLI is required"

if [[ -z "$principal_id" ]]; then
  [[ -n "$deployment_name" ]] || die "give --principal-id or --deployment"
  principal_id="$(az deployment sub show --name "$deployment_name" \
    --query "properties.outputs.appIdentityPrincipalId.value" --output tsv)"
  [[ -n "$principal_id" ]] || die "deployment $deployment_name has no appIdentityPrincipalId output"
fi
is_guid "$principal_id" || die "principal id '$principal_id' is not a GUID"
[[ -n "$tenant_id" ]] || tenant_id="$(az account show --query tenantId --output tsv)"
is_guid "$tenant_id" || die "tenant id '$tenant_id' is not a GUID"

permissions=(User.Read.All User.EnableDisableAccount.All User.RevokeSessions.All)
case "$service_principal_mode" in
  owned) permissions+=(Application.ReadWrite.OwnedBy) ;;
  all)
    echo "WARNING: requesting Application.ReadWrite.All: every consenting partner lets this app" >&2
    echo "         add credentials to any application in its tenant." >&2
    permissions+=(Application.ReadWrite.All) ;;
  none) ;;
esac

# Graph's app role ids for the permissions, read from the Graph service principal.
access=""
for permission in "${permissions[@]}"; do
  role_id="$(az ad sp show --id "$GRAPH_APP_ID" \
    --query "appRoles[?value=='$permission' && contains(allowedMemberTypes, 'Application')].id | [0]" --output tsv)"
  [[ -n "$role_id" ]] || die "Microsoft Graph has no application permission named $permission"
  [[ -z "$access" ]] || access+=","
  access+="{\"id\": \"$role_id\", \"type\": \"Role\"}"
done
required="[{\"resourceAppId\": \"$GRAPH_APP_ID\", \"resourceAccess\": [$access]}]"

app_id="$(az ad app list --display-name "$name" --query "[0].appId" --output tsv)"
if [[ "$dry_run" -eq 1 ]]; then
  echo "would ${app_id:+update}${app_id:-create} multi-tenant app '$name' requesting: ${permissions[*]} (dry run)"
  echo "would add federated credential $FIC_NAME: issuer https://login.microsoftonline.com/$tenant_id/v2.0, subject $principal_id (dry run)"
  exit 0
fi
if [[ -z "$app_id" ]]; then
  app_id="$(az ad app create --display-name "$name" --sign-in-audience AzureADMultipleOrgs \
    --query appId --output tsv)"
  echo "created multi-tenant app registration '$name' ($app_id)"
else
  echo "app registration '$name' exists ($app_id)"
  az ad app update --id "$app_id" --sign-in-audience AzureADMultipleOrgs
fi

access_file="$(mktemp)"
fic_file="$(mktemp)"
trap 'rm -f "$access_file" "$fic_file"' EXIT
printf '%s\n' "$required" > "$access_file"
az ad app update --id "$app_id" --required-resource-accesses "@$access_file"
echo "Graph application permissions requested: ${permissions[*]}"

issuer="https://login.microsoftonline.com/$tenant_id/v2.0"
existing="$(az ad app federated-credential list --id "$app_id" \
  --query "[?name=='$FIC_NAME'].subject | [0]" --output tsv)"
if [[ "$existing" == "$principal_id" ]]; then
  echo "federated credential $FIC_NAME: already present"
else
  if [[ -n "$existing" ]]; then
    # Same name, another identity (the app identity was recreated): replace it.
    az ad app federated-credential delete --id "$app_id" --federated-credential-id "$FIC_NAME"
  fi
  printf '{"name": "%s", "issuer": "%s", "subject": "%s", "audiences": ["api://AzureADTokenExchange"], "description": "soc-responder app identity signs in as this app"}\n' \
    "$FIC_NAME" "$issuer" "$principal_id" > "$fic_file"
  az ad app federated-credential create --id "$app_id" --parameters "@$fic_file" --output none
  echo "federated credential $FIC_NAME: issuer $issuer, subject $principal_id"
fi

# Its service principal in the SOC tenant, so the SOC's own tenant can consent too.
sp_id="$(az ad sp list --filter "appId eq '$app_id'" --query "[0].id" --output tsv)"
[[ -n "$sp_id" ]] || az ad sp create --id "$app_id" --output none

cat <<EOF2

SOC_TENANT_ID=$tenant_id
SOC_APP_CLIENT_ID=$app_id

Send each partner's Global Administrator (or Privileged Role Administrator) this
admin-consent link, with their tenant id in place of {partnerTenant}:
  https://login.microsoftonline.com/{partnerTenant}/adminconsent?client_id=$app_id
EOF2
