// Deployed into the resource group of the (existing) Sentinel workspace, which may be
// in another subscription. Grants the app identity what it needs there and, when
// asked, creates the automation rules that run the soc-responder playbook: one on
// incident creation, one on incident updates (severity, status, owner changes).
metadata description = 'Roles for soc-responder on the Sentinel workspace and the automation rules that run its playbook.'

@description('Name of the existing Sentinel-enabled Log Analytics workspace.')
param workspaceName string

@description('Principal id of the Function App identity.')
param appPrincipalId string

@description('Also grant Microsoft Sentinel Responder (update incident status, severity, comments; issue 7).')
param grantSentinelResponder bool

@description('Create the automation rules that run the playbook for every new incident and for severity, status or owner changes.')
param createAutomationRule bool

@description('Resource id of the Sentinel playbook the automation rule runs.')
param sentinelPlaybookResourceId string

@description('Display name of the automation rule for new incidents.')
param automationRuleName string

@description('Display name of the automation rule for incident updates.')
param updateAutomationRuleName string

@description('Order of the automation rules among the workspace\'s rules of the same trigger (lower runs first; created and updated rules are queued separately).')
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

// Incident updates, so changes made in Sentinel reach POST /api/incidents/sentinel
// (objectEventType "Update"; shared/writeback/updates.py). Same playbook: the Sentinel
// incident trigger serves created and updated rules alike. Conditions (schema of
// Microsoft.SecurityInsights automationRules 2024-09-01): run only when severity,
// status or owner changed, the three properties the app reads from an update; a
// PropertyChanged condition with neither changeType nor values is the portal's
// "Changed" operator. Labels, comments, tactics and new alerts do not run it, so
// soc-responder's own label and comment writes cost no playbook run.
// No IncidentUpdatedBySource ("Updated by") condition: the property name exists in the
// API, but it tells only the kind of source (application, user, playbook, automation
// rule, alert grouping, ...), so "not Application" would also drop changes that other
// applications make, not just ours; and its values are free strings the API schema
// does not list, so a guessed one cannot be checked without a deployment. The app
// recognises its own write-backs coming back (docs/writeback.md): no loop depends on
// this rule's conditions.
// A different GUID from the creation rule (which keeps its name, so redeploys update it).
resource updateAutomationRule 'Microsoft.SecurityInsights/automationRules@2024-09-01' = if (createAutomationRule) {
  name: guid(workspace.id, sentinelPlaybookResourceId, 'Updated')
  scope: workspace
  properties: {
    displayName: updateAutomationRuleName
    order: automationRuleOrder
    triggeringLogic: {
      isEnabled: true
      triggersOn: 'Incidents'
      triggersWhen: 'Updated'
      conditions: [
        {
          conditionType: 'Boolean'
          conditionProperties: {
            operator: 'Or'
            innerConditions: [
              {
                conditionType: 'PropertyChanged'
                conditionProperties: {
                  propertyName: 'IncidentSeverity'
                }
              }
              {
                conditionType: 'PropertyChanged'
                conditionProperties: {
                  propertyName: 'IncidentStatus'
                }
              }
              {
                conditionType: 'PropertyChanged'
                conditionProperties: {
                  propertyName: 'IncidentOwner'
                }
              }
            ]
          }
        }
      ]
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
