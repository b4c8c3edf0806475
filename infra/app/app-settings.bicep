// Applies the app settings that main.bicep assembles. A separate resource (not
// siteConfig.appSettings) so the values may depend on the app's own outputs.
// This resource replaces the whole settings collection on every deployment:
// settings changed by hand in the portal do not survive a redeploy, on purpose.
metadata description = 'App settings of the soc-responder Function App (the full set, replaced on every deployment).'

@description('Name of the existing Function App.')
param functionAppName string

@description('Every app setting, name to string value. Built in main.bicep; no secrets (identity-based connections only).')
param appSettings object

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13,CKV_AZURE_63,CKV_AZURE_65,CKV_AZURE_66,CKV_AZURE_80,CKV_AZURE_88,CKV_AZURE_222: false positives: checkov reads every sites/config resource as the 'web' site config, but this one is the 'appsettings' collection, which has none of those properties (the site itself is checked in function-app.bicep)
  parent: functionApp
  name: 'appsettings'
  properties: appSettings
}

@description('Number of settings applied (values omitted: outputs are visible in the deployment history).')
output settingCount int = length(appSettings)
