"""Direct mode of the NFS backend: the export reached in user space with ``nfs-rs`` (the ``nfs`` extra).

``errors`` (the one table of nfs-rs failures), ``client`` (connections, retries, fork safety), ``io`` (open files
that survive reconnects), ``files`` (the broker's file operations). Nothing here is imported until a workspace
is not mounted.
"""
