// One deployment per protected subscription: the subscription whose VMs the app may
// isolate and whose Defender for Cloud alerts it receives.
targetScope = 'subscription'

metadata description = 'Quarantine resource group, containment roles and Defender for Cloud workflow automation in one protected subscription.'

@description('Azure region of the quarantine resource group and the workflow automation resource.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Name of the resource group that holds the quarantine NSGs (QUARANTINE_RESOURCE_GROUP).')
param quarantineResourceGroupName string

@description('Principal id of the Function App identity.')
param appPrincipalId string

@description('Name (GUID) of the custom network isolation role.')
param networkIsolationRoleGuid string

@description('Name (GUID) of the custom quarantine NSG role.')
param quarantineNsgRoleGuid string

@description('Name (GUID) of the custom Defender for Cloud alert state role.')
param defenderAlertStateRoleGuid string

@description('Assign the custom Defender alert state role so the app can set Defender for Cloud alerts InProgress / Resolved (issue 7).')
param grantDefenderAlertStateUpdate bool

@description('Create the Defender for Cloud workflow automation that runs the forwarder Logic App.')
param deployDefenderAutomation bool

@description('Defender for Cloud alert severities that trigger the forwarder (each one is OR-ed).')
param defenderAlertSeverities array

@description('Resource id of the Defender forwarder Logic App.')
param defenderForwarderResourceId string

@description('Name of the forwarder trigger whose callback URL the automation calls.')
param defenderTriggerName string

@description('Name of the workflow automation resource.')
param automationName string

resource quarantineGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: quarantineResourceGroupName
  location: location
  tags: tags
}

resource networkIsolation 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, appPrincipalId, networkIsolationRoleGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', networkIsolationRoleGuid)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'soc-responder: isolate VMs by attaching the quarantine NSG to their NICs'
  }
}

// Custom role (core/custom-roles.bicep) instead of the built-in Security Admin, which
// could also change security policies, exemptions and Defender plans. Deployments made
// before this change assigned Security Admin: remove that assignment by hand
// (docs/deploy.md, "Upgrading"); an incremental deployment never deletes it.
resource defenderAlertState 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantDefenderAlertStateUpdate) {
  name: guid(subscription().id, appPrincipalId, defenderAlertStateRoleGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', defenderAlertStateRoleGuid)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'soc-responder: read Defender for Cloud alerts, set them InProgress or Resolved'
  }
}

module quarantineGroupContent 'protected-resource-group.bicep' = {
  name: take('soc-quarantine-${uniqueString(quarantineGroup.id, appPrincipalId)}', 64)
  scope: quarantineGroup
  params: {
    location: location
    tags: tags
    appPrincipalId: appPrincipalId
    quarantineNsgRoleGuid: quarantineNsgRoleGuid
    deployDefenderAutomation: deployDefenderAutomation
    defenderAlertSeverities: defenderAlertSeverities
    defenderForwarderResourceId: defenderForwarderResourceId
    defenderTriggerName: defenderTriggerName
    automationName: automationName
  }
}

@description('Resource id of the quarantine resource group.')
output quarantineResourceGroupResourceId string = quarantineGroup.id
