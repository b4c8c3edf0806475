"""Development and test tools for soc-responder.

Nothing in here ships with the Function App:

- ``devtools.fakes``: one loopback HTTPS server (``AzureFake``) that plays Azure Resource
  Manager, Microsoft Graph, Log Analytics and ACS Call Automation for the real
  SDK clients, plus a loopback managed-identity token endpoint.
- ``devtools.azurite``: starts and stops the Azurite storage emulator
  (``node_modules/.bin/azurite``, installed by ``npm ci``).
- ``devtools.functions_runtime``: ``LocalFunctionsRuntime`` runs the app's real handlers
  in-process (``devtools.worker``: what the Python worker does; ``devtools.durable``:
  ``LocalDurableHost``, orchestrations in simulated time).
- ``devtools.local_azure``: Azurite and the fake together, with the app's settings.
"""
