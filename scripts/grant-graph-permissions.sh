#!/usr/bin/env bash
# Grant the soc-responder managed identity the Microsoft Graph application
# permissions (app roles) that containment and email need. Bicep cannot do this:
# app-role assignments are Entra ID (Graph) objects, not Azure resources, and
# granting them needs a directory role (Privileged Role Administrator or Global
# Administrator), which a deployment identity should not hold.
#
# Usage:
#   scripts/grant-graph-permissions.sh --deployment <az deployment sub name> [options]
#   scripts/grant-graph-permissions.sh --principal-id <object id of the identity> [options]
#
# Options:
#   --no-mail                  do not grant Mail.Send (email disabled: MAIL_SENDER unset)
#   --all-service-principals   grant Application.ReadWrite.All instead of
#                              Application.ReadWrite.OwnedBy (see below; dangerous)
#   --no-service-principals    grant neither: service principals are never disabled
#   --graph-endpoint URL       Microsoft Graph endpoint (default https://graph.microsoft.com)
#   --dry-run                  print what would be granted, change nothing
#
# What is granted and why (docs/spec/containment.md and 5):
#   User.Read.All                  read a user's accountEnabled and id before acting,
#                                  so containment and release are idempotent and the
#                                  protected-identity guardrail can match ids and UPNs.
#   User.EnableDisableAccount.All  PATCH /users/{id} accountEnabled=false/true: disable
#                                  a compromised account and re-enable it on release.
#                                  The least-privileged permission for that property.
#   User.RevokeSessions.All        POST /users/{id}/revokeSignInSessions: revoke
#                                  refresh tokens and sessions of the account.
#   Application.ReadWrite.OwnedBy  PATCH /servicePrincipals/{id} accountEnabled=false,
#                                  but only for service principals the identity owns.
#                                  Make the identity an owner of each service principal
#                                  it may disable (docs/deploy.md). Disabling ANY service
#                                  principal needs Application.ReadWrite.All, which also
#                                  lets the holder add credentials to any application,
#                                  a path to tenant takeover; --all-service-principals
#                                  grants it only when you accept that.
#   Mail.Send                      POST /users/{MAIL_SENDER}/sendMail. As an application
#                                  permission it covers every mailbox, so restrict it
#                                  in Exchange Online to the sender mailbox (printed at
#                                  the end: an application access policy, or RBAC for
#                                  Applications).
#
# Needs: az CLI logged in (az login) as a Privileged Role Administrator or Global
# Administrator of the tenant. Idempotent: permissions already granted are skipped.
set -euo pipefail

GRAPH_APP_ID="00000003-0000-0000-c000-000000000000"
graph_endpoint="https://graph.microsoft.com"
principal_id=""
deployment_name=""
grant_mail=1
service_principal_mode="owned"
dry_run=0

die() { echo "grant-graph-permissions: $*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --principal-id) principal_id="${2:-}"; shift 2 ;;
    --deployment) deployment_name="${2:-}"; shift 2 ;;
    --no-mail) grant_mail=0; shift ;;
    --all-service-principals) service_principal_mode="all"; shift ;;
    --no-service-principals) service_principal_mode="none"; shift ;;
    --graph-endpoint) graph_endpoint="${2:-}"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

command -v az >/dev/null 2>&1 || die "the az CLI is required"
graph_endpoint="${graph_endpoint%/}"

if [[ -z "$principal_id" ]]; then
  [[ -n "$deployment_name" ]] || die "give --principal-id or --deployment"
  principal_id="$(az deployment sub show --name "$deployment_name" \
    --query "properties.outputs.appIdentityPrincipalId.value" --output tsv)"
  [[ -n "$principal_id" ]] || die "deployment $deployment_name has no appIdentityPrincipalId output"
fi
[[ "$principal_id" =~ ^[0-9a-fA-F-]{36}$ ]] || die "principal id '$principal_id' is not a GUID"

permissions=(User.Read.All User.EnableDisableAccount.All User.RevokeSessions.All)
case "$service_principal_mode" in
  owned) permissions+=(Application.ReadWrite.OwnedBy) ;;
  all)
    echo "WARNING: granting Application.ReadWrite.All: this identity will be able to add" >&2
    echo "         credentials to any application in the tenant. Protect it accordingly." >&2
    permissions+=(Application.ReadWrite.All) ;;
  none) ;;
esac
if [[ "$grant_mail" -eq 1 ]]; then
  permissions+=(Mail.Send)
fi

graph_sp_id="$(az rest --method GET \
  --uri "$graph_endpoint/v1.0/servicePrincipals?\$filter=appId eq '$GRAPH_APP_ID'&\$select=id" \
  --query "value[0].id" --output tsv)"
[[ -n "$graph_sp_id" ]] || die "Microsoft Graph service principal not found in this tenant"

echo "Identity (service principal) $principal_id; Microsoft Graph service principal $graph_sp_id"

for permission in "${permissions[@]}"; do
  role_id="$(az rest --method GET \
    --uri "$graph_endpoint/v1.0/servicePrincipals/$graph_sp_id?\$select=appRoles" \
    --query "appRoles[?value=='$permission' && contains(allowedMemberTypes, 'Application')].id | [0]" \
    --output tsv)"
  [[ -n "$role_id" ]] || die "Microsoft Graph has no application permission named $permission"

  existing="$(az rest --method GET \
    --uri "$graph_endpoint/v1.0/servicePrincipals/$principal_id/appRoleAssignments" \
    --query "value[?appRoleId=='$role_id' && resourceId=='$graph_sp_id'].id | [0]" \
    --output tsv)"
  if [[ -n "$existing" ]]; then
    echo "  $permission: already granted"
    continue
  fi
  if [[ "$dry_run" -eq 1 ]]; then
    echo "  $permission: would grant (dry run)"
    continue
  fi
  az rest --method POST \
    --uri "$graph_endpoint/v1.0/servicePrincipals/$principal_id/appRoleAssignments" \
    --headers "Content-Type=application/json" \
    --body "{\"principalId\": \"$principal_id\", \"resourceId\": \"$graph_sp_id\", \"appRoleId\": \"$role_id\"}" \
    --output none
  echo "  $permission: granted"
done

if [[ "$grant_mail" -eq 1 ]]; then
  cat <<EOF

Next, restrict Mail.Send to the sender mailbox (Exchange Online PowerShell, as an
Exchange administrator). The app's client id is the appIdentityClientId output.
  # Mail-enabled security group that contains only the MAIL_SENDER mailbox:
  New-ApplicationAccessPolicy -AppId <appIdentityClientId> -PolicyScopeGroupId <group e-mail address> -AccessRight RestrictAccess -Description "soc-responder sends only as its sender mailbox"
  Test-ApplicationAccessPolicy -AppId <appIdentityClientId> -Identity <MAIL_SENDER>
Or use RBAC for Applications in Exchange Online instead (then run this script with
--no-mail so that no tenant-wide Mail.Send exists in Entra ID).
EOF
fi
if [[ "$service_principal_mode" == "owned" ]]; then
  cat <<EOF

Application.ReadWrite.OwnedBy only reaches service principals this identity owns.
For each service principal the app may disable, add the identity as an owner:
  az rest --method POST --uri "$graph_endpoint/v1.0/servicePrincipals/<sp object id>/owners/\\\$ref" \\
    --body '{"@odata.id": "$graph_endpoint/v1.0/directoryObjects/$principal_id"}'
EOF
fi
