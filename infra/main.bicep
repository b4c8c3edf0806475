// soc-responder: everything the app needs in one subscription-scope deployment.
//   az deployment sub create --location <region> --template-file infra/main.bicep \
//     --parameters infra/main.<env>.bicepparam
// See docs/deploy.md for the steps Bicep cannot do (Graph app roles, the callers' keys).
// Written for the Bicep CLI and kept inside what pycep-parser 0.5.1 (checkov) and
// 0.7.1 (tests/infra) parse: no user-defined types, imports, lambdas or spread.
targetScope = 'subscription'

metadata description = 'soc-responder: Function App, identities, storage, monitoring, least-privilege roles and the Sentinel / Defender for Cloud wiring.'

// ---------------------------------------------------------------- naming and placement

@description('Environment name; part of every resource name so dev and prod never collide.')
@allowed([
  'dev'
  'test'
  'prod'
])
param environmentName string

@description('Short workload name (3-8 lowercase letters or digits): the prefix of every resource name.')
@minLength(3)
@maxLength(8)
param workloadName string = 'socresp'

@description('Azure region for the app and its resources (must offer Flex Consumption).')
param location string = deployment().location

@description('Name of the resource group created for the app; empty means rg-<workload>-<environment>.')
param resourceGroupName string = ''

@description('Tags added to every resource (workload and environment tags are always set).')
param tags object = {}

// ---------------------------------------------------------------- what it protects

@description('Resource id of the existing Sentinel-enabled Log Analytics workspace the app polls and that runs the playbook (may be in another subscription).')
param sentinelWorkspaceResourceId string

@description('Subscription ids whose VMs the app may isolate and whose Defender for Cloud alerts it receives; empty means this subscription only.')
param protectedSubscriptionIds array = []

@description('Name of the resource group, created in each protected subscription, that holds the quarantine NSGs (QUARANTINE_RESOURCE_GROUP).')
param quarantineResourceGroupName string = 'rg-soc-quarantine'

// ---------------------------------------------------------------- behaviour (docs/spec/containment.md, docs/spec/notification.md, docs/spec/settings.md)

@description('Deployment-wide response mode (RESPONSE_MODE); a partner may override it.')
@allowed([
  'enforce'
  'approve'
  'dry-run'
])
param responseMode string = 'dry-run'

@description('Mailbox (UPN) that Graph sendMail sends from (MAIL_SENDER); empty disables email.')
param mailSender string = ''

@description('E.164 number calls come from (ACS_CALLER_ID), bought by hand in Communication Services; empty disables calls.')
param acsCallerId string = ''

@description('Issue 14: more E.164 caller numbers (ACS_CALLER_IDS, comma-separated) for SOCs with many partners; each call takes a number with fewer than two calls in progress. Empty: ACS_CALLER_ID alone.')
param acsCallerIds string = ''

@description('Public base URL for call events and links (CALLBACK_BASE_URL); empty means https://<function app default host name>.')
param callbackBaseUrl string = ''

@description('Package-relative path of the partner registry (PARTNERS_FILE).')
param partnersFile string = 'config/partners.json'

@description('Package-relative path of the scoring rules (SCORING_RULES_FILE).')
param scoringRulesFile string = 'config/scoring-rules.json'

@description('Alerts sharing an entity within this many minutes join one incident (GROUPING_WINDOW_MINUTES).')
@minValue(0)
param groupingWindowMinutes int = 60

@description('How far back the first Log Analytics poll looks, in minutes (LOG_ANALYTICS_LOOKBACK_MINUTES).')
@minValue(1)
param logAnalyticsLookbackMinutes int = 1440

@description('Optional CIDR of the SOC investigation subnet allowed through the quarantine NSG (SOC_INVESTIGATION_SOURCE).')
param socInvestigationSource string = ''

@description('More than this many automatic containments within the window are held for approval (BLAST_RADIUS_MAX).')
@minValue(0)
param blastRadiusMax int = 5

@description('Window of the blast-radius breaker in minutes (BLAST_RADIUS_WINDOW_MINUTES).')
@minValue(1)
param blastRadiusWindowMinutes int = 15

// issue 15
@description('A P1\'s first email and call wait at most this many seconds for containment (CONTAINMENT_NOTIFY_AFTER_SECONDS).')
@minValue(0)
param containmentNotifyAfterSeconds int = 60

@description('Phone escalation attempts before it is declared exhausted and people are emailed (ESCALATION_MAX_ATTEMPTS).')
@minValue(1)
param escalationMaxAttempts int = 12

@description('When a P2 incident starts the phone escalation by itself (P2_CALL_RULE).')
@allowed([
  'never'
  'always'
  'out-of-hours'
])
param p2CallRule string = 'never'

@description('Local hour 0-23 of the daily P4 digest email, or off to email each P4 at once (P4_DIGEST_HOUR).')
param p4DigestHour string = '8'

@description('Optional endpoint of the Azure AI services resource connected to Communication Services, for text-to-speech prompts (ACS_COGNITIVE_SERVICES_ENDPOINT); empty uses the ACS default.')
param acsCognitiveServicesEndpoint string = ''

@description('Base back-off in seconds (0-60, decimals allowed, hence a string) of the ARM and Graph retries during containment (CONTAINMENT_RETRY_BACKOFF_SECONDS).')
param containmentRetryBackoffSeconds string = '1'

@description('Microsoft Graph endpoint (GRAPH_ENDPOINT); differs in sovereign clouds.')
param graphEndpoint string = 'https://graph.microsoft.com'

@description('Log Analytics query endpoint (LOG_ANALYTICS_ENDPOINT); differs in sovereign clouds.')
param logAnalyticsEndpoint string = 'https://api.loganalytics.io'

// issue 11: tenancy
@description('Client id of the SOC multi-tenant app printed by scripts/create-soc-app.sh (SOC_APP_CLIENT_ID); empty: a single-tenant SOC, Graph uses the managed identity only.')
param socAppClientId string = ''

// ---------------------------------------------------------------- sizing and retention

@description('Maximum instances of the Flex Consumption plan (40-1000: the range every Flex region accepts).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per Flex Consumption instance in MB.')
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Replication of the host (task hub) storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
])
param hostStorageSku string = 'Standard_ZRS'

@description('Replication of the evidence storage account (zone- or geo-redundant only).')
@allowed([
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param evidenceStorageSku string = 'Standard_GZRS'

@description('Days the evidence archive container keeps blobs immutable; at least 3 years (docs/spec/evidence.md).')
@minValue(1096)
param evidenceRetentionDays int = 1096

@description('Put a CanNotDelete lock on the evidence storage account.')
param lockEvidenceStorage bool = true

@description('Days the app\'s Log Analytics workspace keeps logs (diagnostics, storage audit logs).')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 365

// ---------------------------------------------------------------- optional parts and rights

@description('Create an Azure Communication Services resource for calls and set ACS_ENDPOINT; false leaves calls disabled.')
param deployCommunicationServices bool = false

@description('Data location of the Communication Services resource.')
param communicationServicesDataLocation string = 'United States'

@description('Create a Defender for Cloud workflow automation in each protected subscription.')
param deployDefenderWorkflowAutomation bool = true

@description('Defender for Cloud alert severities forwarded to the app.')
param defenderAlertSeverities array = [
  'High'
]

@description('Create the Sentinel automation rules that run the playbook on every new incident and on severity, status or owner changes (needs sentinelAutomationPrincipalId).')
param createSentinelAutomationRule bool = true

@description('Object id of the Azure Security Insights service principal in this tenant (app id 98785600-1bb7-4fb9-b9fa-19afe2c8a360); when set it may run the playbook. Empty: grant it by hand (docs/deploy.md).')
param sentinelAutomationPrincipalId string = ''

@description('Grant Microsoft Sentinel Responder on the Sentinel workspace so the app can update incidents (issue 7).')
param grantSentinelResponder bool = false

@description('Assign the custom Defender alert state role (read alerts, set InProgress / Resolved) in each protected subscription so the app can update Defender for Cloud alert state (issue 7).')
param grantDefenderAlertStateUpdate bool = false

@description('Object id of the Entra group (or user) allowed to store and rotate the ingest key in Key Vault; empty grants nobody.')
param keyVaultSecretsOfficerPrincipalId string = ''

@description('Principal type of keyVaultSecretsOfficerPrincipalId.')
@allowed([
  'Group'
  'User'
  'ServicePrincipal'
])
param keyVaultSecretsOfficerPrincipalType string = 'Group'

@description('Prefix of the Key Vault secrets holding the callers\' named function keys: <prefix>-<caller>, one per caller (docs/access-setup.md).')
param ingestKeySecretName string = 'soc-responder-ingest-key'

@description('Names of the SIEM forwarders that post to POST /api/alerts, each with its own function key (letters, digits and hyphens; docs/access-setup.md).')
param siemForwarderNames array = []

// ---------------------------------------------------------------- operator sign-in (issue 12)

@description('Application (client) id of the operator app registration (scripts/create-operator-app.sh); empty leaves App Service Authentication off.')
param operatorAppClientId string = ''

// ---------------------------------------------------------------- durable backend (issue 15)

@description('Durable Functions backend: the Azure Storage task hub (default) or a Durable Task Scheduler (docs/durable-settings.md).')
@allowed([
  'AzureStorage'
  'DurableTaskScheduler'
])
param durableBackend string = 'AzureStorage'

@description('Billing SKU of the Durable Task Scheduler when durableBackend is DurableTaskScheduler.')
@allowed([
  'Consumption'
  'Dedicated'
])
param durableTaskSchedulerSku string = 'Consumption'

// ---------------------------------------------------------------- derived names

// Stable per subscription, environment and region: redeploying finds the same resources.
var resourceToken = toLower(uniqueString(subscription().id, workloadName, environmentName, location))
var shortToken = take(resourceToken, 6)
var workload = toLower(workloadName)
var groupName = empty(resourceGroupName) ? 'rg-${workload}-${environmentName}' : resourceGroupName
var allTags = union(tags, {
  workload: 'soc-responder'
  environment: environmentName
})
var protectedSubscriptions = empty(protectedSubscriptionIds) ? [
  subscription().subscriptionId
] : protectedSubscriptionIds
var sentinelWorkspaceSubscriptionId = split(sentinelWorkspaceResourceId, '/')[2]
var sentinelWorkspaceResourceGroup = split(sentinelWorkspaceResourceId, '/')[4]
var sentinelWorkspaceName = last(split(sentinelWorkspaceResourceId, '/'))
var functionAppName = 'func-${workload}-${environmentName}-${shortToken}'
var deploymentContainerName = 'app-package'
// One named function key per caller, each a key of the one function (route) that caller
// posts to, each in its own Key Vault secret: revoking or rotating one leaves the others
// working. scripts/set-caller-keys.sh creates them from the callerKeys output.
var wiringCallerKeys = [
  {
    caller: 'sentinel-playbook'
    functionName: 'ingest_sentinel_incident'
    keyName: 'sentinel-playbook'
    secretName: '${ingestKeySecretName}-sentinel-playbook'
  }
  {
    caller: 'defender-workflow-automation'
    functionName: 'ingest_defender_alert'
    keyName: 'defender-workflow-automation'
    secretName: '${ingestKeySecretName}-defender-workflow-automation'
  }
]
var siemCallerKeys = [for name in siemForwarderNames: {
  caller: 'siem-${name}'
  functionName: 'ingest_generic_alert'
  keyName: 'siem-${name}'
  secretName: '${ingestKeySecretName}-siem-${name}'
}]
var callerKeys = concat(wiringCallerKeys, siemCallerKeys)
var useDurableTaskScheduler = durableBackend == 'DurableTaskScheduler'
// Must equal extensions.durableTask.hubName in host.json (a test checks).
var durableTaskHubName = 'SocResponderHub'
var archiveContainerName = 'evidence-archive'

// ---------------------------------------------------------------- resources

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: groupName
  location: location
  tags: allTags
}

module identities 'core/identity.bicep' = {
  name: '${workload}-${environmentName}-identities'
  scope: group
  params: {
    location: location
    tags: allTags
    appIdentityName: 'id-${workload}-app-${environmentName}'
    wiringIdentityName: 'id-${workload}-wiring-${environmentName}'
  }
}

module monitoring 'core/monitoring.bicep' = {
  name: '${workload}-${environmentName}-monitoring'
  scope: group
  params: {
    location: location
    tags: allTags
    logAnalyticsName: 'log-${workload}-${environmentName}'
    appInsightsName: 'appi-${workload}-${environmentName}'
    retentionInDays: logRetentionDays
    appPrincipalId: identities.outputs.appPrincipalId
  }
}

module hostStorage 'core/host-storage.bicep' = {
  name: '${workload}-${environmentName}-host-storage'
  scope: group
  params: {
    location: location
    tags: allTags
    storageAccountName: 'st${workload}h${resourceToken}'
    skuName: hostStorageSku
    deploymentContainerName: deploymentContainerName
    appPrincipalId: identities.outputs.appPrincipalId
    logAnalyticsWorkspaceResourceId: monitoring.outputs.logAnalyticsWorkspaceResourceId
  }
}

module evidenceStorage 'core/evidence-storage.bicep' = {
  name: '${workload}-${environmentName}-evidence-storage'
  scope: group
  params: {
    location: location
    tags: allTags
    storageAccountName: 'st${workload}e${resourceToken}'
    skuName: evidenceStorageSku
    evidenceRetentionDays: evidenceRetentionDays
    archiveContainerName: archiveContainerName
    lockAccount: lockEvidenceStorage
    appPrincipalId: identities.outputs.appPrincipalId
    logAnalyticsWorkspaceResourceId: monitoring.outputs.logAnalyticsWorkspaceResourceId
  }
}

module keyVault 'core/key-vault.bicep' = {
  name: '${workload}-${environmentName}-key-vault'
  scope: group
  params: {
    location: location
    tags: allTags
    keyVaultName: 'kv-${workload}-${environmentName}-${shortToken}'
    wiringPrincipalId: identities.outputs.wiringPrincipalId
    appPrincipalId: identities.outputs.appPrincipalId // issue 16: Key Vault Secrets User (Teams webhook URLs)
    secretsOfficerPrincipalId: keyVaultSecretsOfficerPrincipalId
    secretsOfficerPrincipalType: keyVaultSecretsOfficerPrincipalType
    logAnalyticsWorkspaceResourceId: monitoring.outputs.logAnalyticsWorkspaceResourceId
  }
}

module communication 'core/communication.bicep' = if (deployCommunicationServices) {
  name: '${workload}-${environmentName}-communication'
  scope: group
  params: {
    communicationServicesName: 'acs-${workload}-${environmentName}-${shortToken}'
    tags: allTags
    dataLocation: communicationServicesDataLocation
    appPrincipalId: identities.outputs.appPrincipalId
  }
}

module functionApp 'app/function-app.bicep' = {
  name: '${workload}-${environmentName}-function-app'
  scope: group
  params: {
    location: location
    tags: allTags
    planName: 'plan-${workload}-${environmentName}'
    functionAppName: functionAppName
    appIdentityResourceId: identities.outputs.appIdentityResourceId
    deploymentContainerUrl: hostStorage.outputs.deploymentContainerUrl
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    logAnalyticsWorkspaceResourceId: monitoring.outputs.logAnalyticsWorkspaceResourceId
  }
}

module playbooks 'app/playbooks.bicep' = {
  name: '${workload}-${environmentName}-playbooks'
  scope: group
  params: {
    location: location
    tags: allTags
    sentinelPlaybookName: 'logic-${workload}-sentinel-${environmentName}'
    defenderForwarderName: 'logic-${workload}-defender-${environmentName}'
    functionBaseUrl: 'https://${functionApp.outputs.defaultHostName}'
    wiringIdentityResourceId: identities.outputs.wiringIdentityResourceId
    keyVaultUri: keyVault.outputs.keyVaultUri
    sentinelKeySecretName: wiringCallerKeys[0].secretName
    defenderKeySecretName: wiringCallerKeys[1].secretName
    sentinelAutomationPrincipalId: sentinelAutomationPrincipalId
    logAnalyticsWorkspaceResourceId: monitoring.outputs.logAnalyticsWorkspaceResourceId
  }
}

module sentinel 'app/sentinel-workspace.bicep' = {
  name: '${workload}-${environmentName}-sentinel'
  scope: resourceGroup(sentinelWorkspaceSubscriptionId, sentinelWorkspaceResourceGroup)
  params: {
    workspaceName: sentinelWorkspaceName
    appPrincipalId: identities.outputs.appPrincipalId
    grantSentinelResponder: grantSentinelResponder
    // Sentinel refuses a rule that runs a playbook it may not run: only with the grant.
    createAutomationRule: createSentinelAutomationRule && !empty(sentinelAutomationPrincipalId)
    sentinelPlaybookResourceId: playbooks.outputs.sentinelPlaybookResourceId
    automationRuleName: 'soc-responder (${environmentName}): forward new incidents'
    updateAutomationRuleName: 'soc-responder (${environmentName}): forward incident updates'
    automationRuleOrder: 100
  }
}

module customRoles 'core/custom-roles.bicep' = {
  name: '${workload}-${environmentName}-custom-roles'
  params: {
    workloadName: workload
    environmentName: environmentName
    assignableSubscriptionIds: protectedSubscriptions
  }
}

module protectedSubscription 'app/protected-subscription.bicep' = [for subscriptionId in protectedSubscriptions: {
  name: take('${workload}-${environmentName}-protected-${subscriptionId}', 64)
  scope: subscription(subscriptionId)
  params: {
    location: location
    tags: allTags
    quarantineResourceGroupName: quarantineResourceGroupName
    appPrincipalId: identities.outputs.appPrincipalId
    networkIsolationRoleGuid: customRoles.outputs.networkIsolationRoleGuid
    quarantineNsgRoleGuid: customRoles.outputs.quarantineNsgRoleGuid
    defenderAlertStateRoleGuid: customRoles.outputs.defenderAlertStateRoleGuid
    grantDefenderAlertStateUpdate: grantDefenderAlertStateUpdate
    deployDefenderAutomation: deployDefenderWorkflowAutomation
    defenderAlertSeverities: defenderAlertSeverities
    defenderForwarderResourceId: playbooks.outputs.defenderForwarderResourceId
    defenderTriggerName: playbooks.outputs.defenderTriggerName
    automationName: 'soc-responder-${workload}-${environmentName}'
  }
}]

// Entra ID sign-in for operators (issue 12); the code enforces the app roles.
module operatorAuth 'app/auth-settings.bicep' = if (!empty(operatorAppClientId)) {
  name: '${workload}-${environmentName}-operator-auth'
  scope: group
  params: {
    functionAppName: functionApp.outputs.functionAppName
    operatorAppClientId: operatorAppClientId
  }
}

// Optional Durable Task Scheduler backend (issue 15); Azure Storage stays the default.
module durableTaskScheduler 'core/durable-task-scheduler.bicep' = if (useDurableTaskScheduler) {
  name: '${workload}-${environmentName}-durable-task-scheduler'
  scope: group
  params: {
    location: location
    tags: allTags
    schedulerName: 'dts-${workload}-${environmentName}-${shortToken}'
    taskHubName: durableTaskHubName
    skuName: durableTaskSchedulerSku
    appPrincipalId: identities.outputs.appPrincipalId
  }
}

// Read by the Durable extension only with the scheduler backend: host.json names the
// Azure Storage provider, and these two AzureFunctionsJobHost__ settings override its
// type and connection (docs/durable-settings.md). Identity-based: no key exists.
var durableBackendSettings = useDurableTaskScheduler ? {
  DURABLE_TASK_SCHEDULER_CONNECTION_STRING: 'Endpoint=${durableTaskScheduler.outputs.endpoint};Authentication=ManagedIdentity;ClientID=${identities.outputs.appClientId}'
  AzureFunctionsJobHost__extensions__durableTask__storageProvider__type: 'azureManaged'
  AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
} : {}

// Every app setting, in one place. tests/infra/test_infra.py checks these names
// against shared/settings.py. No keys or connection strings: storage is reached with
// the managed identity (the `__serviceUri` / `__credential` / `__clientId` form).
module appSettings 'app/app-settings.bicep' = {
  name: '${workload}-${environmentName}-app-settings'
  scope: group
  params: {
    functionAppName: functionApp.outputs.functionAppName
    durableBackendSettings: durableBackendSettings
    appSettings: {
      // Read by the Functions host and the Durable extension (identity-based AzureWebJobsStorage).
      AzureWebJobsStorage__blobServiceUri: hostStorage.outputs.blobServiceUri
      AzureWebJobsStorage__queueServiceUri: hostStorage.outputs.queueServiceUri
      AzureWebJobsStorage__tableServiceUri: hostStorage.outputs.tableServiceUri
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: identities.outputs.appClientId
      // Read by the host: telemetry, sent with the identity because local auth is off.
      APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.appInsightsConnectionString
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identities.outputs.appClientId};Authorization=AAD'
      // issue 15: read by the Python worker — threads for sync functions (activities, orchestrator replays);
      // the default min(32, cores + 4) is below host.json's 10 concurrent activities (docs/durable-settings.md).
      PYTHON_THREADPOOL_THREAD_COUNT: '16'
      // Evidence tables through the managed identity (EvidenceStorage itself is local-only).
      EvidenceStorage__tableServiceUri: evidenceStorage.outputs.tableServiceUri
      EvidenceStorage__credential: 'managedidentity'
      EvidenceStorage__clientId: identities.outputs.appClientId
      // Which user-assigned identity DefaultAzureCredential uses.
      AZURE_CLIENT_ID: identities.outputs.appClientId
      ARM_ENDPOINT: environment().resourceManager
      GRAPH_ENDPOINT: graphEndpoint
      LOG_ANALYTICS_ENDPOINT: logAnalyticsEndpoint
      LOG_ANALYTICS_WORKSPACE_ID: sentinel.outputs.workspaceCustomerId
      ACS_ENDPOINT: deployCommunicationServices ? communication.outputs.endpoint : ''
      ACS_CALLER_ID: acsCallerId
      ACS_COGNITIVE_SERVICES_ENDPOINT: acsCognitiveServicesEndpoint
      CALLBACK_BASE_URL: empty(callbackBaseUrl) ? 'https://${functionApp.outputs.defaultHostName}' : callbackBaseUrl
      RESPONSE_MODE: responseMode
      PARTNERS_FILE: partnersFile
      SCORING_RULES_FILE: scoringRulesFile
      MAIL_SENDER: mailSender
      GROUPING_WINDOW_MINUTES: string(groupingWindowMinutes)
      LOG_ANALYTICS_LOOKBACK_MINUTES: string(logAnalyticsLookbackMinutes)
      QUARANTINE_RESOURCE_GROUP: quarantineResourceGroupName
      SOC_INVESTIGATION_SOURCE: socInvestigationSource
      BLAST_RADIUS_MAX: string(blastRadiusMax)
      BLAST_RADIUS_WINDOW_MINUTES: string(blastRadiusWindowMinutes)
      ESCALATION_MAX_ATTEMPTS: string(escalationMaxAttempts)
      P2_CALL_RULE: p2CallRule
      P4_DIGEST_HOUR: p4DigestHour
      CONTAINMENT_RETRY_BACKOFF_SECONDS: containmentRetryBackoffSeconds
      CONTAINMENT_NOTIFY_AFTER_SECONDS: string(containmentNotifyAfterSeconds) // issue 15
      // Write back only where the identity was granted the rights to (docs/writeback.md).
      // issue 12: operators sign in (App Service Authentication, infra/app/auth-settings.bicep) and the code
      // checks their app role; evidence anchors go to the write-once archive container.
      OPERATOR_AUTH: 'entra'
      EvidenceStorage__blobServiceUri: evidenceStorage.outputs.blobServiceUri
      EVIDENCE_ARCHIVE_CONTAINER: archiveContainerName
      // ACS callbacks: the signed token of each event is checked against this OpenID configuration and audience.
      ACS_CALLBACK_OPENID_CONFIG: 'https://acscallautomation.communication.azure.com/calling/.well-known/acsopenidconfiguration'
      // issue 16: console links in notifications (same host as the callbacks) and the key of its CSRF tokens,
      // a Key Vault reference (the secret 'console-csrf-key' is created by scripts/ or by hand; never in the file).
      CONSOLE_BASE_URL: empty(callbackBaseUrl) ? 'https://${functionApp.outputs.defaultHostName}' : callbackBaseUrl
      CONSOLE_CSRF_KEY: '@Microsoft.KeyVault(VaultName=${keyVault.outputs.keyVaultName};SecretName=console-csrf-key)'
      // issue 16: Teams channels — the registry names secrets (teamsWebhookSecret) in this vault; the app reads them
      // with its identity (Key Vault Secrets User on this vault only, core/key-vault.bicep).
      KEY_VAULT_URL: keyVault.outputs.keyVaultUri
      ACS_CALLER_IDS: acsCallerIds
      ACS_RESOURCE_ID: deployCommunicationServices ? communication.outputs.immutableResourceId : ''
      WRITEBACK_TARGETS: grantSentinelResponder && grantDefenderAlertStateUpdate ? 'sentinel,defender' : grantSentinelResponder ? 'sentinel' : grantDefenderAlertStateUpdate ? 'defender' : 'none'
      // issue 11: tenancy (Graph tokens for partners' tenants; ARM through Lighthouse needs nothing here)
      SOC_TENANT_ID: tenant().tenantId
      SOC_APP_CLIENT_ID: socAppClientId
      AZURE_AUTHORITY_HOST: environment().authentication.loginEndpoint
      // issue 14: storm summaries and the mail pacer (Exchange Online accepts 30 messages a minute per mailbox)
      STORM_THRESHOLD: '8'
      STORM_WINDOW_MINUTES: '5'
      STORM_SUMMARY_MINUTES: '5'
      MAIL_MAX_PER_MINUTE: '30'
      TEAMS_POSTS_PER_MINUTE: '10'
    }
  }
}

// ---------------------------------------------------------------- outputs (no secrets)

@description('Resource group that holds the app.')
output resourceGroupName string = group.name

@description('Name of the Function App (publish target).')
output functionAppName string = functionApp.outputs.functionAppName

@description('Default host name of the Function App.')
output functionAppHostName string = functionApp.outputs.defaultHostName

@description('Object id of the app identity: pass it to scripts/grant-graph-permissions.sh.')
output appIdentityPrincipalId string = identities.outputs.appPrincipalId

@description('Client id of the app identity (for Exchange application access policies).')
output appIdentityClientId string = identities.outputs.appClientId

@description('Object id of the wiring identity the Logic Apps run as.')
output wiringIdentityPrincipalId string = identities.outputs.wiringPrincipalId

@description('Key Vault that must receive the ingest key (docs/deploy.md).')
output keyVaultName string = keyVault.outputs.keyVaultName

@description('Prefix of the Key Vault secrets holding the callers\' named function keys.')
output ingestKeySecretName string = ingestKeySecretName

@description('One named function key per caller: caller, functionName, keyName, secretName (names only; scripts/set-caller-keys.sh reads this).')
output callerKeys array = callerKeys

@description('Durable Functions backend in use (AzureStorage or DurableTaskScheduler).')
output durableBackend string = durableBackend

@description('Name of the host storage account (task hub, deployment package).')
output hostStorageAccountName string = hostStorage.outputs.storageAccountName

@description('Name of the evidence storage account.')
output evidenceStorageAccountName string = evidenceStorage.outputs.storageAccountName

@description('URL of the immutable evidence archive container.')
output evidenceArchiveContainerUrl string = evidenceStorage.outputs.archiveContainerUrl

@description('Resource id of the Sentinel playbook.')
output sentinelPlaybookResourceId string = playbooks.outputs.sentinelPlaybookResourceId

@description('Resource id of the Defender for Cloud forwarder Logic App.')
output defenderForwarderResourceId string = playbooks.outputs.defenderForwarderResourceId

@description('Subscriptions the app may contain VMs in.')
output protectedSubscriptionIds array = protectedSubscriptions
