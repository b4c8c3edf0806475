// App Service Authentication (Easy Auth, authsettingsV2) with the Entra ID provider in
// front of the Function App: operators sign in with the operator app registration
// (scripts/create-operator-app.sh, app roles Responder / Approver / Auditor), and the
// platform hands the code the signed-in principal as X-MS-CLIENT-PRINCIPAL.
//
// Unauthenticated requests are let through (AllowAnonymous), on purpose: the ingest
// routes are called by Logic Apps, Defender workflow automation and SIEM forwarders with
// a named function key, and POST /api/callbacks/acs by Communication Services with a
// per-call secret; none of them can sign in. Those keys and secrets are checked by the
// Functions host and the code. On operator and auditor routes the CODE enforces the
// caller's app role from X-MS-CLIENT-PRINCIPAL (401 without a principal, 403 without the
// role; docs/spec/access.md): a platform-wide "require sign-in" would lock the machine
// callers out. The header cannot be forged from outside: the platform strips any
// incoming X-MS-CLIENT-PRINCIPAL and sets it only from a token it has validated.
metadata description = 'Entra ID sign-in (authsettingsV2) for the operator routes; anonymous requests pass to the code, which checks keys, secrets and app roles.'

@description('Name of the existing Function App.')
param functionAppName string

@description('Application (client) id of the operator app registration created by scripts/create-operator-app.sh.')
param operatorAppClientId string

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov reads every Microsoft.Web/sites/config resource as the 'web' config; these are false positives here.
  // checkov:skip=CKV_AZURE_63: HTTP logging is a web-config property; this resource is authsettingsV2 (the site sends allLogs to Log Analytics)
  // checkov:skip=CKV_AZURE_65: detailed error messages are a web-config property; this resource is authsettingsV2
  // checkov:skip=CKV_AZURE_66: failed request tracing is a web-config property; this resource is authsettingsV2
  // checkov:skip=CKV_AZURE_80: .NET Framework version is a web-config property and the app is Python; this resource is authsettingsV2
  // checkov:skip=CKV_AZURE_88: Azure Files mounts do not apply: this resource is authsettingsV2 and Flex Consumption deploys from a blob container
  // checkov:skip=CKV_AZURE_222: public network access is a site property (skipped with its reason in function-app.bicep); this resource is authsettingsV2
  // checkov:skip=CKV_AZURE_13: this resource IS App Service Authentication; checkov looks for the legacy siteConfig flag, which authsettingsV2 replaces
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      // Machine callers (function keys) and ACS (per-call secret) cannot sign in; the
      // code checks them, and checks app roles on operator routes (see the header).
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: operatorAppClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          // Tokens for this API only: its client id (v2 tokens) or its App ID URI (v1).
          allowedAudiences: [
            operatorAppClientId
            'api://${operatorAppClientId}'
          ]
        }
      }
    }
    login: {
      // The app never calls APIs on the user's behalf: no tokens kept server-side.
      tokenStore: {
        enabled: false
      }
    }
    httpSettings: {
      requireHttps: true
    }
  }
}

@description('Issuer the Entra ID provider trusts (the SOC tenant).')
output openIdIssuer string = authSettings.properties.identityProviders.azureActiveDirectory.registration.openIdIssuer
