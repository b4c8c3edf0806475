// Inside the quarantine resource group of one protected subscription.
metadata description = 'Quarantine NSG role assignment and the Defender for Cloud workflow automation of one protected subscription.'

@description('Azure region of the workflow automation resource.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Principal id of the Function App identity.')
param appPrincipalId string

@description('Name (GUID) of the custom quarantine NSG role.')
param quarantineNsgRoleGuid string

@description('Create the Defender for Cloud workflow automation.')
param deployDefenderAutomation bool

@description('Defender for Cloud alert severities that trigger the forwarder (each one is OR-ed).')
param defenderAlertSeverities array

@description('Resource id of the Defender forwarder Logic App (may be in another subscription).')
param defenderForwarderResourceId string

@description('Name of the forwarder trigger whose callback URL the automation calls.')
param defenderTriggerName string

@description('Name of the workflow automation resource.')
param automationName string

resource quarantineNsgManager 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, appPrincipalId, quarantineNsgRoleGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', quarantineNsgRoleGuid)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'soc-responder: create and maintain the quarantine NSGs'
  }
}

// Workflow automation covers the whole subscription. The Logic App's callback URL is
// fetched by ARM at deployment (listCallbackUrl) and handed straight to Defender:
// it carries a signature, so it is never a parameter or an output.
resource defenderAutomation 'Microsoft.Security/automations@2023-12-01-preview' = if (deployDefenderAutomation) {
  name: automationName
  location: location
  tags: tags
  properties: {
    description: 'soc-responder: forward Defender for Cloud alerts to POST /api/alerts/defender'
    isEnabled: true
    scopes: [
      {
        description: 'Subscription ${subscription().subscriptionId}'
        scopePath: subscription().id
      }
    ]
    sources: [
      {
        eventSource: 'Alerts'
        ruleSets: [for severity in defenderAlertSeverities: {
          rules: [
            {
              propertyJPath: 'Severity'
              propertyType: 'String'
              expectedValue: severity
              operator: 'Equals'
            }
          ]
        }]
      }
    ]
    actions: [
      {
        actionType: 'LogicApp'
        logicAppResourceId: defenderForwarderResourceId
        uri: listCallbackUrl('${defenderForwarderResourceId}/triggers/${defenderTriggerName}', '2019-05-01').value
      }
    ]
  }
}
