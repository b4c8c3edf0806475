// The Function App on the Flex Consumption plan (Linux, Python 3.11).
// App settings are not set here: they are applied by app-settings.bicep, called from
// main.bicep, so main.bicep is the one place that lists every setting (and the test
// in tests/infra compares that list with shared/settings.py). Splitting them also
// lets CALLBACK_BASE_URL use this app's real host name without a reference cycle.
// On Flex Consumption the runtime and its version live in functionAppConfig.runtime;
// FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION are not allowed as settings.
metadata description = 'Flex Consumption Function App (Python 3.11) with a user-assigned identity, HTTPS/TLS 1.2 only, FTP and basic auth off.'

@description('Azure region of the plan and the app (must offer Flex Consumption).')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Name of the Flex Consumption plan.')
param planName string

@description('Name of the Function App (globally unique host name prefix).')
param functionAppName string

@description('Resource id of the user-assigned identity the app runs as.')
param appIdentityResourceId string

@description('URL of the blob container that holds the deployment package.')
param deploymentContainerUrl string

@description('Upper bound of instances the plan may scale out to (40-1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

@description('Memory of each instance in MB.')
@allowed([
  2048
  4096
])
param instanceMemoryMB int

@description('Resource id of the Log Analytics workspace that receives the diagnostic logs.')
param logAnalyticsWorkspaceResourceId string

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption is offered only in some regions and needs always-ready instances; the responder tolerates a zone outage through retries and the timer poll
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    // Linux plan.
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: client certificates would break the callers that cannot present one (Sentinel/Defender Logic App HTTP actions, Azure Communication Services call events)
  // checkov:skip=CKV_AZURE_222: public network access is required: Logic Apps (Consumption) and Azure Communication Services call this app over the internet
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero by itself; a missed push is caught by the poll_log_analytics timer, so always-ready instances are not worth their cost
  // checkov:skip=CKV_AZURE_213: the app exposes no health endpoint (docs/spec/operator-api.md defines none) and Flex Consumption replaces failed instances itself; failures are watched in Application Insights
  name: functionAppName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${appIdentityResourceId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: appIdentityResourceId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
  }
}

// Basic (user name/password) publishing credentials off for FTP and SCM: publishing
// uses Entra ID (az functionapp deployment / func azure functionapp publish).
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

resource appDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: functionApp
  properties: {
    workspaceId: logAnalyticsWorkspaceResourceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

@description('Name of the Function App.')
output functionAppName string = functionApp.name

@description('Resource id of the Function App.')
output functionAppResourceId string = functionApp.id

@description('Default host name of the Function App (no scheme).')
output defaultHostName string = functionApp.properties.defaultHostName
