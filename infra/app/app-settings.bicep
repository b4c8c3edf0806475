// Applies the app settings that main.bicep assembles. A separate resource (not
// siteConfig.appSettings) so the values may depend on the app's own outputs.
// This resource replaces the whole settings collection on every deployment:
// settings changed by hand in the portal do not survive a redeploy, on purpose.
metadata description = 'App settings of the soc-responder Function App (the full set, replaced on every deployment).'

@description('Name of the existing Function App.')
param functionAppName string

@description('Every app setting, name to string value. Built in main.bicep; no secrets (identity-based connections only).')
param appSettings object

@description('Settings of the optional Durable Task Scheduler backend (host-read; empty for the Azure Storage backend), merged into appSettings.')
param durableBackendSettings object = {}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov reads every Microsoft.Web/sites/config resource as the 'web' config; these are false positives here.
  // checkov:skip=CKV_AZURE_13: App Service Authentication is its own authsettingsV2 resource (auth-settings.bicep, on when operatorAppClientId is set); this resource is the appsettings collection
  // checkov:skip=CKV_AZURE_63: HTTP logging is a web-config property; this resource is the appsettings collection (the site sends allLogs to Log Analytics)
  // checkov:skip=CKV_AZURE_65: detailed error messages are a web-config property; this resource is the appsettings collection
  // checkov:skip=CKV_AZURE_66: failed request tracing is a web-config property; this resource is the appsettings collection
  // checkov:skip=CKV_AZURE_80: .NET Framework version is a web-config property and the app is Python; this resource is the appsettings collection
  // checkov:skip=CKV_AZURE_88: Azure Files mounts do not apply: this resource is the appsettings collection and Flex Consumption deploys from a blob container
  // checkov:skip=CKV_AZURE_222: public network access is a site property (skipped with its reason in function-app.bicep); this resource is the appsettings collection
  parent: functionApp
  name: 'appsettings'
  properties: union(appSettings, durableBackendSettings)
}

@description('Number of settings applied (values omitted: outputs are visible in the deployment history).')
output settingCount int = length(union(appSettings, durableBackendSettings))
