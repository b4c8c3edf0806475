// Custom roles, narrower than any built-in that can do the job (Network Contributor
// could delete VNets, rewrite route tables and open NSGs anywhere; Security Admin can
// change security policies, exemptions and Defender plans). Created once in the
// deployment subscription and assignable in every protected subscription.
targetScope = 'subscription'

metadata description = 'Custom roles for VM network isolation (NIC write, NSG join), quarantine NSG management and Defender for Cloud alert state.'

@description('Short workload name, part of the role names.')
param workloadName string

@description('Environment name (dev, test, prod), part of the role names so each environment owns its roles.')
param environmentName string

@description('Subscription ids the roles may be assigned in (the protected subscriptions).')
param assignableSubscriptionIds array

// The definition's own subscription must be among its assignable scopes.
var assignableScopes = [for subscriptionId in union([subscription().subscriptionId], assignableSubscriptionIds): '/subscriptions/${subscriptionId}']

// Assigned at each protected subscription. Reads VMs and NICs; writes NICs to attach or
// restore an NSG. A NIC PUT is linked-access-checked against every resource the NIC
// references, hence the join actions (subnet, public IP, ASG, load balancer and
// application gateway pools, NSG). No delete, no VM write, no NSG write here.
resource networkIsolationRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, workloadName, environmentName, 'network-isolation')
  properties: {
    roleName: '${workloadName}-${environmentName} network isolation'
    description: 'soc-responder: read VMs and NICs, attach or restore a NIC network security group (quarantine), nothing else.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Resources/subscriptions/resourceGroups/read'
          'Microsoft.Compute/virtualMachines/read'
          'Microsoft.Network/networkInterfaces/read'
          'Microsoft.Network/networkInterfaces/write'
          'Microsoft.Network/networkSecurityGroups/read'
          'Microsoft.Network/networkSecurityGroups/join/action'
          'Microsoft.Network/virtualNetworks/subnets/join/action'
          'Microsoft.Network/publicIPAddresses/join/action'
          'Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action'
          'Microsoft.Network/loadBalancers/backendAddressPools/join/action'
          'Microsoft.Network/loadBalancers/inboundNatRules/join/action'
          'Microsoft.Network/applicationGateways/backendAddressPools/join/action'
          'Microsoft.Network/locations/operations/read'
          'Microsoft.Network/locations/operationResults/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

// Assigned only on the quarantine resource group of each protected subscription:
// create the per-region deny-all quarantine NSG and keep its rules current.
resource quarantineNsgRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, workloadName, environmentName, 'quarantine-nsg')
  properties: {
    roleName: '${workloadName}-${environmentName} quarantine NSG manager'
    description: 'soc-responder: create and update the quarantine network security groups in the quarantine resource group.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Resources/subscriptions/resourceGroups/read'
          'Microsoft.Network/networkSecurityGroups/read'
          'Microsoft.Network/networkSecurityGroups/write'
          'Microsoft.Network/networkSecurityGroups/join/action'
          'Microsoft.Network/networkSecurityGroups/securityRules/read'
          'Microsoft.Network/networkSecurityGroups/securityRules/write'
          'Microsoft.Network/locations/operations/read'
          'Microsoft.Network/locations/operationResults/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

// Assigned at each protected subscription when grantDefenderAlertStateUpdate is on
// (issue 7 write-back): read Defender for Cloud alerts and move them to InProgress or
// Resolved (POST .../alerts/{name}/inProgress and .../resolve, API 2022-01-01).
// Why a wildcard: the Microsoft.Security operations list has alerts/read,
// alerts/activate/action, alerts/dismiss/action, alerts/resolve/action and
// alerts/simulate/action, but no alerts/inProgress/action, and a role definition
// naming an unregistered action is rejected; ARM still checks that action on the
// inProgress call, so only `alerts/*` covers it. The app never activates, dismisses
// or simulates alerts (docs/writeback.md), so notActions take those back out: the
// role reads alerts and sets InProgress / Resolved, nothing else in Microsoft.Security.
resource defenderAlertStateRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, workloadName, environmentName, 'defender-alert-state')
  properties: {
    roleName: '${workloadName}-${environmentName} Defender alert state'
    description: 'soc-responder: read Defender for Cloud alerts and set them InProgress or Resolved; no policies, exemptions, plans or other Security settings.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Security/locations/alerts/read'
          'Microsoft.Security/locations/alerts/*'
        ]
        notActions: [
          'Microsoft.Security/locations/alerts/activate/action'
          'Microsoft.Security/locations/alerts/dismiss/action'
          'Microsoft.Security/locations/alerts/simulate/action'
        ]
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

@description('Name (GUID) of the network isolation role, to be resolved in each protected subscription.')
output networkIsolationRoleGuid string = networkIsolationRole.name

@description('Name (GUID) of the quarantine NSG role.')
output quarantineNsgRoleGuid string = quarantineNsgRole.name

@description('Name (GUID) of the Defender for Cloud alert state role.')
output defenderAlertStateRoleGuid string = defenderAlertStateRole.name
