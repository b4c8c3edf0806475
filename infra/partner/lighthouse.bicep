// Deployed BY A PARTNER in its own tenant, once per subscription it hands to the SOC:
// an Azure Lighthouse registration definition (who in the SOC's tenant gets which
// roles) and its assignment to this subscription, plus the quarantine resource group
// soc-responder keeps its per-region quarantine NSGs in.
//   az deployment sub create --location <region> --parameters infra/partner/lighthouse.example.bicepparam
// Steps, consent for Microsoft Graph and the SOC's side: docs/onboarding.md.
//
// Lighthouse accepts BUILT-IN roles only (no custom roles, no Owner, no role with
// DataActions), so the narrow custom roles of infra/core/custom-roles.bicep cannot be
// used here; each role below is the least built-in role that allows one thing the app
// does, and tests/infra/test_partner.py keeps the list in step with the test's own.
targetScope = 'subscription'

metadata description = 'Azure Lighthouse delegation of this subscription to a managed SOC running soc-responder (built-in roles only).'

@description('Entra tenant id of the managing SOC (the tenant soc-responder runs in).')
param socTenantId string

@description('Principal (object) id of the user-assigned managed identity soc-responder runs as, in the SOC tenant (the appIdentityPrincipalId output of the SOC deployment).')
param socPrincipalId string

@description('Name shown to the partner for the SOC identity in Azure portal, Service providers.')
param socPrincipalDisplayName string = 'soc-responder (managed SOC)'

@description('Name of the offer shown under Service providers; also seeds the registration definition name.')
param offerName string = 'soc-responder managed SOC'

@description('What the offer allows, shown to the partner.')
param offerDescription string = 'Automated containment, Sentinel incident and Defender for Cloud alert write-back by the SOC\'s soc-responder.'

@description('Also delegate Security Admin so the app can set Defender for Cloud alerts InProgress / Resolved; false keeps Defender write-back off for this partner.')
param delegateDefenderAlertState bool = true

@description('Resource group created here for the quarantine NSGs; must equal QUARANTINE_RESOURCE_GROUP of the SOC deployment.')
param quarantineResourceGroupName string = 'rg-soc-quarantine'

@description('Region of the quarantine resource group (the NSGs themselves follow each VM\'s region).')
param location string = deployment().location

// Built-in role definition ids (the same in every Azure tenant).
// Network Contributor: PUT a NIC with the quarantine NSG attached needs
// networkInterfaces/write plus the join actions ARM checks on that PUT (the NSG's
// join, and the subnet's, public IP's, ASG's, load balancer pools' already on the NIC);
// the quarantine NSG itself is created and repaired with networkSecurityGroups/write.
// No narrower built-in role has NIC write with those joins (Virtual Machine
// Contributor lacks NSG write; Contributor is far wider). It can also delete and
// rewrite other network resources: the built-ins-only rule of Lighthouse is the cost.
var networkContributorRoleId = '4d97b98b-1d4f-4787-a291-c67834d212e7'
// Microsoft Sentinel Responder: read incidents and update them (status, severity,
// owner, labels, comments): the write-back of docs/writeback.md. Microsoft Sentinel
// Contributor would also edit analytics rules, connectors and workbooks.
var sentinelResponderRoleId = '3e150937-b8fe-4cfb-8069-0eaf05ecd056'
// Log Analytics Reader: query the partner's workspaces (poll, investigation) and,
// through its */read action, read VMs and NICs, which containment reads before it
// writes; so no separate Reader role is needed.
var logAnalyticsReaderRoleId = '73c42c96-874c-492b-b04d-ab87d138a893'
// Security Admin: the only built-in role below Contributor that holds
// Microsoft.Security/locations/alerts/* (set an alert InProgress / Resolved); Security
// Reader cannot write. It also edits security policies and Defender plans, which the
// SOC deployment's custom 'Defender alert state' role avoids: that role cannot be
// delegated through Lighthouse. Optional (delegateDefenderAlertState).
var securityAdminRoleId = 'fb1c8493-542b-48eb-b624-b4c8fea62acd'

var baseAuthorizations = [
  {
    principalId: socPrincipalId
    principalIdDisplayName: socPrincipalDisplayName
    roleDefinitionId: networkContributorRoleId
  }
  {
    principalId: socPrincipalId
    principalIdDisplayName: socPrincipalDisplayName
    roleDefinitionId: sentinelResponderRoleId
  }
  {
    principalId: socPrincipalId
    principalIdDisplayName: socPrincipalDisplayName
    roleDefinitionId: logAnalyticsReaderRoleId
  }
]
var defenderAuthorizations = delegateDefenderAlertState ? [
  {
    principalId: socPrincipalId
    principalIdDisplayName: socPrincipalDisplayName
    roleDefinitionId: securityAdminRoleId
  }
] : []

var baseRoleIds = [
  networkContributorRoleId
  sentinelResponderRoleId
  logAnalyticsReaderRoleId
]
var defenderRoleIds = delegateDefenderAlertState ? [
  securityAdminRoleId
] : []

// Stable names: redeploying updates the same definition and assignment.
var definitionName = guid(socTenantId, socPrincipalId, offerName)

resource registrationDefinition 'Microsoft.ManagedServices/registrationDefinitions@2022-10-01' = {
  name: definitionName
  properties: {
    registrationDefinitionName: offerName
    description: offerDescription
    managedByTenantId: socTenantId
    authorizations: concat(baseAuthorizations, defenderAuthorizations)
  }
}

resource registrationAssignment 'Microsoft.ManagedServices/registrationAssignments@2022-10-01' = {
  name: guid(subscription().id, definitionName)
  properties: {
    registrationDefinitionId: registrationDefinition.id
  }
}

// Network Contributor cannot create resource groups: the partner creates this one.
resource quarantineGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: quarantineResourceGroupName
  location: location
  tags: {
    purpose: 'soc-responder quarantine NSGs'
  }
}

@description('Registration definition id (the SOC sees it in My customers).')
output registrationDefinitionId string = registrationDefinition.id

@description('Registration assignment id: delete it to end the delegation.')
output registrationAssignmentId string = registrationAssignment.id

@description('Roles delegated to the SOC identity (built-in role definition ids).')
output delegatedRoleDefinitionIds array = concat(baseRoleIds, defenderRoleIds)
