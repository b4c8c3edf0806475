"""What the Azure Functions Python worker does for an app, in-process: index its functions, call them.

``index`` (discovery, route templates, invoking a function with its bindings by parameter name),
``context`` (the ``context`` argument and output bindings) and ``loop`` (the one shared event loop
async functions run on). Used by ``devtools.functions_runtime`` (HTTP and timer triggers) and
``devtools.durable`` (orchestrations and activities); imports nothing from either.
"""
