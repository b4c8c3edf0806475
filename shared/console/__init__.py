"""Issue 16: the console — server-rendered pages where analysts and auditors work (docs/spec/console.md).

``markup`` (escaping templates), ``csrf`` (double-submit tokens bound to the signed-in user), ``queue``
(the open-incident queue from the store's index), ``incident`` (one incident's page data), ``pages``
(HTML). Pure or store-reading only: the routes live in ``functions/console.py``.
"""
