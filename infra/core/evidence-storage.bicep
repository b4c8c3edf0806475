// Storage for the evidence tables (docs/spec/evidence.md): incidents, timeline, containment
// actions, notifications, alert index. Evidence must be kept for at least three years
// and nothing may delete younger evidence. Azure Table storage has neither soft delete
// nor immutability policies, so the protections here are:
//   - no shared keys (no SAS, no key-holder can bypass Entra RBAC),
//   - a CanNotDelete lock on the account (the tables cannot vanish with it),
//   - every data-plane delete logged to Log Analytics (StorageDelete via allLogs),
//   - geo/zone-redundant replication,
//   - an archive blob container with a time-based immutability policy for exports.
// The hash chain in the timeline (docs/spec/evidence.md) proves any tampering that gets past these.
metadata description = 'Evidence storage account: identity-only table access, delete lock, audit logs and an immutable archive container.'

@description('Azure region of the storage account.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Storage account name (3-24 lowercase letters and digits, globally unique).')
@minLength(3)
@maxLength(24)
param storageAccountName string

@description('Replication of the evidence account; zone- or geo-redundant only, because evidence outlives any single datacentre failure.')
@allowed([
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param skuName string

@description('Days the archive container keeps every blob immutable (at least 3 years, docs/spec/evidence.md).')
@minValue(1096)
param evidenceRetentionDays int

@description('Blob container for evidence exports (auditor CSV/JSON, post-incident reviews), write-once for evidenceRetentionDays.')
param archiveContainerName string

@description('Put a CanNotDelete lock on the account. Leave on outside throw-away dev subscriptions.')
param lockAccount bool

@description('Principal id of the Function App identity: evidence table writer (no delete) on this account, anchor writer on the archive container.')
param appPrincipalId string

@description('Resource id of the Log Analytics workspace that receives the diagnostic logs.')
param logAnalyticsWorkspaceResourceId string

// issue 12: the app's data roles here are custom and cannot delete. Table rows: read, insert,
// update/replace (every evidence write is a conditional insert or an ETag-guarded replace; no
// code path of the app deletes). Archive container: read and create blobs only (evidence
// anchors; the immutability policy forbids overwrite and delete anyway). Deleting evidence
// (the 3-year retention purge, shared/retention.py) is an operator's job, under a role granted
// for that change only (docs/access-setup.md).
var evidenceTableWriterActions = [
  'Microsoft.Storage/storageAccounts/tableServices/tables/read'
  'Microsoft.Storage/storageAccounts/tableServices/tables/write'
]
var evidenceTableWriterDataActions = [
  'Microsoft.Storage/storageAccounts/tableServices/tables/entities/read'
  'Microsoft.Storage/storageAccounts/tableServices/tables/entities/write'
  'Microsoft.Storage/storageAccounts/tableServices/tables/entities/add/action'
  'Microsoft.Storage/storageAccounts/tableServices/tables/entities/update/action'
]
var anchorWriterDataActions = [
  'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'
  'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'
  'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches the evidence tables over the public endpoint; shared keys are off, so only Entra identities with a data role get in
  // checkov:skip=CKV_AZURE_59: public network access stays enabled for the same reason (no VNet integration); authentication is Entra-only and no container allows anonymous reads
  // checkov:skip=CKV_AZURE_43: the name is computed from a prefix and uniqueString() and is 3-24 lowercase alphanumerics by construction, which checkov cannot evaluate
  // checkov:skip=CKV_AZURE_206: replication is a parameter restricted by @allowed to ZRS, GRS, RA-GRS, GZRS and RA-GZRS, which checkov cannot evaluate
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    // No keys, no SAS, no connection strings: every caller uses Entra ID.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    // Versioning plus long soft delete: an overwritten or deleted export can be restored.
    isVersioningEnabled: true
    deleteRetentionPolicy: {
      enabled: true
      days: 365
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 365
    }
  }
}

resource archiveContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: archiveContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Time-based retention (WORM) on the archive. Bicep can only create it unlocked;
// locking is irreversible and is a deliberate manual step in prod (docs/deploy.md).
resource archiveImmutability 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = {
  parent: archiveContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: evidenceRetentionDays
    allowProtectedAppendWrites: false
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deleteLock 'Microsoft.Authorization/locks@2020-05-01' = if (lockAccount) {
  name: 'evidence-cannot-delete'
  scope: storage
  properties: {
    level: 'CanNotDelete'
    notes: 'soc-responder evidence must be kept for at least 3 years (docs/spec/evidence.md); remove this lock only through change control.'
  }
}

resource evidenceTableWriterRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'soc-responder-evidence-table-writer')
  properties: {
    roleName: 'soc-responder evidence table writer (${resourceGroup().name})'
    description: 'Read, insert and update evidence table rows; no delete (issue 12).'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: evidenceTableWriterActions
        notActions: []
        dataActions: evidenceTableWriterDataActions
        notDataActions: []
      }
    ]
  }
}

resource anchorWriterRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'soc-responder-evidence-anchor-writer')
  properties: {
    roleName: 'soc-responder evidence anchor writer (${resourceGroup().name})'
    description: 'Read and create blobs in the write-once evidence archive; no delete (issue 12).'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: []
        notActions: []
        dataActions: anchorWriterDataActions
        notDataActions: []
      }
    ]
  }
}

resource tableDataWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, 'soc-responder-evidence-table-writer')
  scope: storage
  properties: {
    roleDefinitionId: evidenceTableWriterRole.id
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource archiveAnchorWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(archiveContainer.id, appPrincipalId, 'soc-responder-evidence-anchor-writer')
  scope: archiveContainer
  properties: {
    roleDefinitionId: anchorWriterRole.id
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource accountDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: storage
  properties: {
    workspaceId: logAnalyticsWorkspaceResourceId
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: tableService
  properties: {
    workspaceId: logAnalyticsWorkspaceResourceId
    // StorageRead, StorageWrite and StorageDelete: every evidence write and delete is audited.
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
  }
}

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: blobService
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

@description('Resource id of the evidence storage account.')
output storageAccountResourceId string = storage.id

@description('Name of the evidence storage account.')
output storageAccountName string = storage.name

@description('Table service URI (EvidenceStorage__tableServiceUri).')
output tableServiceUri string = storage.properties.primaryEndpoints.table

@description('Blob service URI (EvidenceStorage__blobServiceUri): evidence anchors in the archive container.')
output blobServiceUri string = storage.properties.primaryEndpoints.blob

@description('URL of the immutable archive container for evidence exports.')
output archiveContainerUrl string = '${storage.properties.primaryEndpoints.blob}${archiveContainerName}'
