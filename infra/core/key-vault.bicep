// Key Vault that holds the one secret the wiring needs: the Functions host key the
// Logic Apps send as x-functions-key when they forward incidents and alerts. The key
// never appears in a parameter, a parameters file or a Logic App definition: the
// playbooks read it at run time with their managed identity (secure inputs/outputs),
// and an operator stores it once after publishing the code (docs/deploy.md).
metadata description = 'Key Vault (RBAC, purge protection) holding the ingest function key read by the Logic Apps.'

@description('Azure region of the vault.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Key Vault name (3-24 characters, globally unique).')
@minLength(3)
@maxLength(24)
param keyVaultName string

@description('Principal id of the wiring identity (Logic Apps), granted Key Vault Secrets User on this vault.')
param wiringPrincipalId string

@description('Principal id of the app\'s own identity, granted Key Vault Secrets User on this vault (issue 16: the Teams webhook URLs named in the partner registry, the console CSRF key).')
param appPrincipalId string

@description('Optional object id of the Entra group (or user) that stores and rotates the ingest key; empty grants nobody.')
param secretsOfficerPrincipalId string

@description('Principal type of secretsOfficerPrincipalId.')
@allowed([
  'Group'
  'User'
  'ServicePrincipal'
])
param secretsOfficerPrincipalType string

@description('Resource id of the Log Analytics workspace that receives the audit logs.')
param logAnalyticsWorkspaceResourceId string

// Built-in roles: Key Vault Secrets User (read secret values), Key Vault Secrets Officer (manage secrets).
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficerRoleId = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: the Consumption Logic Apps that read the key have no VNet and are not a trusted service for the vault firewall; access is RBAC-only to one identity
  // checkov:skip=CKV_AZURE_189: public network access is needed for the same reason; every read is authenticated with Entra ID and audited (AuditEvent)
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Azure RBAC instead of access policies: roles are scoped, audited and in this template.
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource wiringSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, wiringPrincipalId, keyVaultSecretsUserRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: wiringPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// issue 16: the app reads secret values only (Teams Workflows webhook URLs, the console's CSRF key): Secrets
// User on this one vault, never Officer or a wider scope (least privilege; it can neither list keys nor write).
resource appSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, keyVaultSecretsUserRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(secretsOfficerPrincipalId)) {
  name: guid(vault.id, secretsOfficerPrincipalId, keyVaultSecretsOfficerRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficerRoleId)
    principalId: secretsOfficerPrincipalId
    principalType: secretsOfficerPrincipalType
  }
}

resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceResourceId
    logs: [
      {
        categoryGroup: 'audit'
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

@description('Name of the Key Vault.')
output keyVaultName string = vault.name

@description('Vault URI (https://<name>.vault.azure.net/ in the public cloud).')
output keyVaultUri string = vault.properties.vaultUri
