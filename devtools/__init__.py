"""Development and test tools for soc-responder.

Nothing in here ships with the Function App:

- ``devtools.azure_fake``: one loopback HTTPS server that plays Azure Resource
  Manager, Microsoft Graph, Log Analytics and ACS Call Automation for the real
  SDK clients, plus a loopback managed-identity token endpoint.
- ``devtools.azurite``: starts and stops the Azurite storage emulator
  (``node_modules/.bin/azurite``, installed by ``npm ci``).
"""
