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

@description('Grant Security Admin so the app can update Defender for Cloud alert state (issue 7).')
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

// Built-in role: Security Admin, the narrowest built-in with the Defender alert
// dismiss/activate/resolve actions.
var securityAdminRoleId = 'fb1c8493-542b-48eb-b624-b4c8fea62acd'

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

resource securityAdmin 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantDefenderAlertStateUpdate) {
  name: guid(subscription().id, appPrincipalId, securityAdminRoleId)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', securityAdminRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'soc-responder: update Defender for Cloud alert state'
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
