// Production: held actions until the runbook is signed off (switch responseMode to
// 'enforce' deliberately), geo-redundant evidence with a delete lock, a year of logs.
// Tenant-specific ids come from environment variables (docs/deploy.md).
using './main.bicep'

param environmentName = 'prod'
param workloadName = 'socresp'
param sentinelWorkspaceResourceId = readEnvironmentVariable('SOC_SENTINEL_WORKSPACE_RESOURCE_ID')
param protectedSubscriptionIds = empty(readEnvironmentVariable('SOC_PROTECTED_SUBSCRIPTION_IDS', '')) ? [] : split(readEnvironmentVariable('SOC_PROTECTED_SUBSCRIPTION_IDS', ''), ',')
param sentinelAutomationPrincipalId = readEnvironmentVariable('SOC_SENTINEL_AUTOMATION_PRINCIPAL_ID', '')
param keyVaultSecretsOfficerPrincipalId = readEnvironmentVariable('SOC_KEYVAULT_SECRETS_OFFICER_ID', '')
param mailSender = readEnvironmentVariable('SOC_MAIL_SENDER', '')
param acsCallerId = readEnvironmentVariable('SOC_ACS_CALLER_ID', '')
param acsCallerIds = readEnvironmentVariable('SOC_ACS_CALLER_IDS', '')
param acsCognitiveServicesEndpoint = readEnvironmentVariable('SOC_ACS_COGNITIVE_SERVICES_ENDPOINT', '')
param responseMode = 'approve'
param maximumInstanceCount = 40
param hostStorageSku = 'Standard_ZRS'
param evidenceStorageSku = 'Standard_GZRS'
param lockEvidenceStorage = true
param logRetentionDays = 365
param deployCommunicationServices = true
param communicationServicesDataLocation = 'United States'
param deployDefenderWorkflowAutomation = true
param createSentinelAutomationRule = true
// Issue 7 write-back is part of the product: Microsoft Sentinel Responder on the
// workspace and the custom Defender alert state role (WRITEBACK_TARGETS becomes
// sentinel,defender). What each role allows: docs/writeback.md, Permissions.
param grantSentinelResponder = true
param grantDefenderAlertStateUpdate = true
param tags = {
  costCenter: 'soc'
}
