// Deployed into the resource group of the (existing) Sentinel workspace, which may be
// in another subscription. Grants the app identity what it needs there and, when
// asked, creates the automation rule that runs the soc-responder playbook.
metadata description = 'Roles for soc-responder on the Sentinel workspace and the automation rule that runs its playbook.'

@description('Name of the existing Sentinel-enabled Log Analytics workspace.')
param workspaceName string

@description('Principal id of the Function App identity.')
param appPrincipalId string

@description('Also grant Microsoft Sentinel Responder (update incident status, severity, comments; issue 7).')
param grantSentinelResponder bool

@description('Create the automation rule that runs the playbook for every new incident.')
param createAutomationRule bool

@description('Resource id of the Sentinel playbook the automation rule runs.')
param sentinelPlaybookResourceId string

@description('Display name of the automation rule.')
param automationRuleName string

@description('Order of the automation rule among the workspace\'s rules (lower runs first).')
@minValue(1)
@maxValue(1000)
param automationRuleOrder int

// Built-in roles: Log Analytics Reader (query SecurityIncident/SecurityAlert), Microsoft Sentinel Responder.
var logAnalyticsReaderRoleId = '73c42c96-874c-492b-b04d-ab87d138a893'
var sentinelResponderRoleId = '3e150937-b8fe-4cfb-8069-0eaf05ecd056'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource logAnalyticsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, appPrincipalId, logAnalyticsReaderRoleId)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', logAnalyticsReaderRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource sentinelResponder 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantSentinelResponder) {
  name: guid(workspace.id, appPrincipalId, sentinelResponderRoleId)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', sentinelResponderRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The rule's name must be a GUID; derived from the workspace and playbook so redeploys update it.
resource automationRule 'Microsoft.SecurityInsights/automationRules@2024-09-01' = if (createAutomationRule) {
  name: guid(workspace.id, sentinelPlaybookResourceId)
  scope: workspace
  properties: {
    displayName: automationRuleName
    order: automationRuleOrder
    triggeringLogic: {
      isEnabled: true
      triggersOn: 'Incidents'
      triggersWhen: 'Created'
      conditions: []
    }
    actions: [
      {
        order: 1
        actionType: 'RunPlaybook'
        actionConfiguration: {
          logicAppResourceId: sentinelPlaybookResourceId
          tenantId: tenant().tenantId
        }
      }
    ]
  }
}

@description('Workspace (customer) id, a GUID: LOG_ANALYTICS_WORKSPACE_ID.')
output workspaceCustomerId string = workspace.properties.customerId
