// Development: dry-run, cheap redundancy, no delete lock, short log retention.
// Tenant-specific ids come from environment variables so this file holds none
// (docs/deploy.md lists them); readEnvironmentVariable without a default fails the
// build when the variable is missing, which is what we want for the workspace id.
using './main.bicep'

param environmentName = 'dev'
param workloadName = 'socresp'
param sentinelWorkspaceResourceId = readEnvironmentVariable('SOC_SENTINEL_WORKSPACE_RESOURCE_ID')
param protectedSubscriptionIds = empty(readEnvironmentVariable('SOC_PROTECTED_SUBSCRIPTION_IDS', '')) ? [] : split(readEnvironmentVariable('SOC_PROTECTED_SUBSCRIPTION_IDS', ''), ',')
param sentinelAutomationPrincipalId = readEnvironmentVariable('SOC_SENTINEL_AUTOMATION_PRINCIPAL_ID', '')
param keyVaultSecretsOfficerPrincipalId = readEnvironmentVariable('SOC_KEYVAULT_SECRETS_OFFICER_ID', '')
param mailSender = readEnvironmentVariable('SOC_MAIL_SENDER', '')
param acsCallerId = readEnvironmentVariable('SOC_ACS_CALLER_ID', '')
param acsCallerIds = readEnvironmentVariable('SOC_ACS_CALLER_IDS', '')
param acsCognitiveServicesEndpoint = readEnvironmentVariable('SOC_ACS_COGNITIVE_SERVICES_ENDPOINT', '')
param responseMode = 'dry-run'
param maximumInstanceCount = 40
param hostStorageSku = 'Standard_LRS'
param evidenceStorageSku = 'Standard_ZRS'
param lockEvidenceStorage = false
param logRetentionDays = 30
param deployCommunicationServices = false
param deployDefenderWorkflowAutomation = true
param createSentinelAutomationRule = true
// Write-back stays off in dev: dev runs unreleased code and SOC_SENTINEL_WORKSPACE_RESOURCE_ID /
// SOC_PROTECTED_SUBSCRIPTION_IDS often name the production SOC's workspace and
// subscriptions, where dev must not change incidents or alert state. Turn both on only
// when dev has its own workspace and subscriptions (docs/deploy.md, write-back).
param grantSentinelResponder = false
param grantDefenderAlertStateUpdate = false
param tags = {
  costCenter: 'soc'
}
