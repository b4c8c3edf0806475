// Example parameters for infra/partner/lighthouse.bicep. The SOC sends the partner the
// two ids (its tenant id and the appIdentityPrincipalId output of its deployment);
// the partner exports them and deploys, see docs/onboarding.md.
using './lighthouse.bicep'

param socTenantId = readEnvironmentVariable('SOC_TENANT_ID')
param socPrincipalId = readEnvironmentVariable('SOC_APP_IDENTITY_PRINCIPAL_ID')
param offerName = 'soc-responder managed SOC'
param delegateDefenderAlertState = true
param quarantineResourceGroupName = 'rg-soc-quarantine'
