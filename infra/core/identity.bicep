// User-assigned managed identities.
// Two identities, not one: the Function App's identity holds the containment rights
// (NIC write, Graph app roles), the wiring identity used by the Logic Apps only reads
// one Key Vault secret. A compromised playbook therefore cannot isolate anything.
metadata description = 'User-assigned managed identities for the soc-responder Function App and its Logic App wiring.'

@description('Azure region of the identities.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Name of the identity the Function App runs as.')
param appIdentityName string

@description('Name of the identity the Sentinel and Defender Logic Apps run as.')
param wiringIdentityName string

resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: appIdentityName
  location: location
  tags: tags
}

resource wiringIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: wiringIdentityName
  location: location
  tags: tags
}

@description('Resource id of the Function App identity.')
output appIdentityResourceId string = appIdentity.id

@description('Object (principal) id of the Function App identity: the subject of every role assignment and of the Graph app-role grants.')
output appPrincipalId string = appIdentity.properties.principalId

@description('Client id of the Function App identity (AZURE_CLIENT_ID, `__clientId` settings).')
output appClientId string = appIdentity.properties.clientId

@description('Resource id of the wiring identity used by the Logic Apps.')
output wiringIdentityResourceId string = wiringIdentity.id

@description('Object (principal) id of the wiring identity.')
output wiringPrincipalId string = wiringIdentity.properties.principalId
