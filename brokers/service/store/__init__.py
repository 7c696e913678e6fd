"""The one registry behind every API: workspaces, their history and trash, and the users who change them.

The API modules translate their documents' shapes to and from this layer; every rule (who may change what,
versions, names, history, secrets) lives here once.
"""
