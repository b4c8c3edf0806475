// Durable Task Scheduler: the managed Durable Functions backend, offered as an
// alternative to the Azure Storage task hub (durableBackend in main.bicep; trade-offs in
// docs/durable-settings.md). The app reaches it with its user-assigned identity
// (Durable Task Data Contributor on this scheduler); no key or connection secret exists.
metadata description = 'Durable Task Scheduler and task hub for the app, with Durable Task Data Contributor for the app identity.'

@description('Azure region of the scheduler (the app\'s region keeps latency low).')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Name of the scheduler (3-64 letters, digits or hyphens).')
@minLength(3)
@maxLength(64)
param schedulerName string

@description('Name of the task hub; must equal extensions.durableTask.hubName in host.json.')
param taskHubName string

@description('Billing SKU of the scheduler.')
@allowed([
  'Consumption'
  'Dedicated'
])
param skuName string

@description('Principal id of the app identity, granted Durable Task Data Contributor on the scheduler.')
param appPrincipalId string

// Built-in role: Durable Task Data Contributor (start, query, raise events, run work items).
var durableTaskDataContributorRoleId = '0ad04412-c4d5-4796-b79c-f76d14c8d402'

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = {
  name: schedulerName
  location: location
  tags: tags
  properties: {
    sku: {
      name: skuName
    }
    // An empty list denies every caller; Flex Consumption without VNet integration has no
    // fixed outbound address, so access rests on Entra ID (the role below) alone.
    ipAllowlist: [
      '0.0.0.0/0'
    ]
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = {
  parent: scheduler
  name: taskHubName
}

resource appDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(scheduler.id, appPrincipalId, durableTaskDataContributorRoleId)
  scope: scheduler
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', durableTaskDataContributorRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

@description('Endpoint of the scheduler (https://...durabletask.io).')
output endpoint string = scheduler.properties.endpoint

@description('Name of the task hub.')
output taskHubName string = taskHub.name
