// The wiring that pushes detections to the app (docs/spec/ingest.md):
//   - a Sentinel playbook (incident trigger) that forwards each incident to
//     POST /api/incidents/sentinel; a Sentinel automation rule runs it (sentinel-workspace.bicep);
//   - a Logic App with the Defender for Cloud alert trigger that forwards to
//     POST /api/alerts/defender; Defender workflow automation runs it (protected-resource-group.bicep).
// Both run as the wiring identity, read THEIR OWN named function key (a per-function key
// of the route they call, docs/access-setup.md) from Key Vault at run time with secure
// inputs/outputs (the key is never in a parameter or the run history), and
// retry transient failures with exponential back-off; the app de-duplicates retries.
metadata description = 'Sentinel playbook and Defender for Cloud forwarder Logic Apps that call the soc-responder ingest routes.'

@description('Azure region of the Logic Apps and API connections.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Name of the Sentinel playbook Logic App.')
param sentinelPlaybookName string

@description('Name of the Defender for Cloud forwarder Logic App.')
param defenderForwarderName string

@description('Base URL of the Function App, https://<host>, no trailing slash.')
param functionBaseUrl string

@description('Resource id of the wiring identity the Logic Apps run as.')
param wiringIdentityResourceId string

@description('URI of the Key Vault that holds the ingest key, with its trailing slash.')
param keyVaultUri string

@description('Name of the Key Vault secret holding the Sentinel playbook\'s own function key (ingest_sentinel_incident).')
param sentinelKeySecretName string

@description('Name of the Key Vault secret holding the Defender forwarder\'s own function key (ingest_defender_alert).')
param defenderKeySecretName string

@description('Optional object id of the Azure Security Insights service principal in this tenant; when set it gets Microsoft Sentinel Automation Contributor on this resource group so automation rules may run the playbook.')
param sentinelAutomationPrincipalId string

@description('Resource id of the Log Analytics workspace that receives the run history diagnostics.')
param logAnalyticsWorkspaceResourceId string

// Trigger names: the Defender automation asks for this trigger's callback URL by name.
var defenderTriggerName = 'Defender_for_Cloud_alert'
// Built-in role: Microsoft Sentinel Automation Contributor (lets Sentinel run playbooks in this resource group).
var sentinelAutomationContributorRoleId = 'f4c81013-99ee-4d62-a7ee-b3f1f648599a'
// Key Vault's token audience in this cloud: keyvaultDns is '.vault.azure.net' in the public cloud.
var keyVaultAudience = 'https://${substring(environment().suffixes.keyvaultDns, 1)}'

resource sentinelConnection 'Microsoft.Web/connections@2016-06-01' = {
  name: 'azuresentinel-${sentinelPlaybookName}'
  location: location
  tags: tags
  kind: 'V1'
  properties: {
    displayName: 'Microsoft Sentinel (managed identity) for ${sentinelPlaybookName}'
    api: {
      id: subscriptionResourceId('Microsoft.Web/locations/managedApis', location, 'azuresentinel')
    }
    // 'Alternative' makes this a managed-identity connection: no OAuth consent, no stored credential.
    parameterValueType: 'Alternative'
  }
}

resource defenderConnection 'Microsoft.Web/connections@2016-06-01' = {
  name: 'ascalert-${defenderForwarderName}'
  location: location
  tags: tags
  kind: 'V1'
  properties: {
    displayName: 'Microsoft Defender for Cloud alerts for ${defenderForwarderName}'
    api: {
      id: subscriptionResourceId('Microsoft.Web/locations/managedApis', location, 'ascalert')
    }
  }
}

resource sentinelPlaybook 'Microsoft.Logic/workflows@2019-05-01' = {
  name: sentinelPlaybookName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${wiringIdentityResourceId}': {}
    }
  }
  properties: {
    state: 'Enabled'
    definition: loadJsonContent('workflows/sentinel-incident-forwarder.json')
    parameters: {
      '$connections': {
        value: {
          azuresentinel: {
            connectionId: sentinelConnection.id
            connectionName: sentinelConnection.name
            id: subscriptionResourceId('Microsoft.Web/locations/managedApis', location, 'azuresentinel')
            connectionProperties: {
              authentication: {
                type: 'ManagedServiceIdentity'
                identity: wiringIdentityResourceId
              }
            }
          }
        }
      }
      functionBaseUrl: {
        value: functionBaseUrl
      }
      keyVaultUri: {
        value: keyVaultUri
      }
      keyVaultAudience: {
        value: keyVaultAudience
      }
      ingestKeySecretName: {
        value: sentinelKeySecretName
      }
      wiringIdentityResourceId: {
        value: wiringIdentityResourceId
      }
    }
  }
}

resource defenderForwarder 'Microsoft.Logic/workflows@2019-05-01' = {
  name: defenderForwarderName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${wiringIdentityResourceId}': {}
    }
  }
  properties: {
    state: 'Enabled'
    definition: loadJsonContent('workflows/defender-alert-forwarder.json')
    parameters: {
      '$connections': {
        value: {
          ascalert: {
            connectionId: defenderConnection.id
            connectionName: defenderConnection.name
            id: subscriptionResourceId('Microsoft.Web/locations/managedApis', location, 'ascalert')
          }
        }
      }
      functionBaseUrl: {
        value: functionBaseUrl
      }
      keyVaultUri: {
        value: keyVaultUri
      }
      keyVaultAudience: {
        value: keyVaultAudience
      }
      ingestKeySecretName: {
        value: defenderKeySecretName
      }
      wiringIdentityResourceId: {
        value: wiringIdentityResourceId
      }
    }
  }
}

resource sentinelAutomationContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(sentinelAutomationPrincipalId)) {
  name: guid(resourceGroup().id, sentinelAutomationPrincipalId, sentinelAutomationContributorRoleId)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', sentinelAutomationContributorRoleId)
    principalId: sentinelAutomationPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource sentinelPlaybookDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: sentinelPlaybook
  properties: {
    workspaceId: logAnalyticsWorkspaceResourceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
  }
}

resource defenderForwarderDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: defenderForwarder
  properties: {
    workspaceId: logAnalyticsWorkspaceResourceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
  }
}

@description('Resource id of the Sentinel playbook (the automation rule runs it).')
output sentinelPlaybookResourceId string = sentinelPlaybook.id

@description('Resource id of the Defender for Cloud forwarder Logic App.')
output defenderForwarderResourceId string = defenderForwarder.id

@description('Name of the Defender forwarder trigger whose callback URL the workflow automation uses.')
output defenderTriggerName string = defenderTriggerName
