// Log Analytics workspace and workspace-based Application Insights for the app's own
// telemetry and diagnostic logs. This is not the Sentinel workspace: operational logs
// of the responder stay separate from the security data it reads.
metadata description = 'Log Analytics workspace and Application Insights (Entra-only ingestion) for soc-responder.'

@description('Azure region of the workspace and Application Insights.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Name of the Log Analytics workspace.')
param logAnalyticsName string

@description('Name of the Application Insights component.')
param appInsightsName string

@description('Days the workspace keeps logs (interactive retention).')
@minValue(30)
@maxValue(730)
param retentionInDays int

@description('Principal id of the Function App identity, granted Monitoring Metrics Publisher so it can ingest with Entra authentication.')
param appPrincipalId string

// Built-in role: Monitoring Metrics Publisher (the role Entra-authenticated ingestion checks).
var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      enableLogAccessUsingOnlyResourcePermissions: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    // Entra-only ingestion: the instrumentation key alone can no longer write telemetry.
    DisableLocalAuth: true
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appPrincipalId, monitoringMetricsPublisherRoleId)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

@description('Resource id of the Log Analytics workspace that receives diagnostic settings.')
output logAnalyticsWorkspaceResourceId string = workspace.id

@description('Application Insights connection string (an endpoint locator, not a credential: local auth is disabled).')
output appInsightsConnectionString string = appInsights.properties.ConnectionString
