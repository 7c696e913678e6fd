"""The older Scale workspace API (``/v5/workspaces/``): list and details, over the same registry as v6."""
