"""soc-responder: assembles the Functions app from its blueprints (nothing else happens here)."""
import azure.durable_functions as df

from functions import ingest, operator, runbook

app = df.DFApp()
app.register_functions(ingest.bp)
app.register_functions(runbook.bp)
app.register_functions(operator.bp)
