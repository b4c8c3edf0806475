// Azure Communication Services for the P1 call escalation (docs/spec/notification.md). Phone numbers
// cannot be bought from Bicep: buy one in the portal and set acsCallerId.
metadata description = 'Azure Communication Services resource for calls, reached by the app with its managed identity.'

@description('Name of the Communication Services resource (globally unique).')
param communicationServicesName string

@description('Tags applied to every resource.')
param tags object

@description('Where Communication Services stores data at rest (for example United States, Europe, UK).')
param dataLocation string

@description('Principal id of the Function App identity, granted Contributor on this resource only (the role Call Automation checks for Entra callers).')
param appPrincipalId string

// Built-in role: Contributor, scoped to this one resource.
var contributorRoleId = 'b24988ac-6180-42a0-ab88-20f7382dd24c'

resource communication 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: communicationServicesName
  // Communication Services is a global resource; dataLocation decides residency.
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource callerRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(communication.id, appPrincipalId, contributorRoleId)
  scope: communication
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', contributorRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

@description('Endpoint of the Communication Services resource (ACS_ENDPOINT).')
output endpoint string = 'https://${communication.properties.hostName}'

@description('Immutable resource id: the audience of Call Automation callback tokens (ACS_RESOURCE_ID, issue 12).')
output immutableResourceId string = communication.properties.immutableResourceId
