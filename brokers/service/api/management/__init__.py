"""The workspace-management API of ``meiro-workspaces-api.txt``: unversioned ``/workspaces`` and ``/dawgs`` paths."""
