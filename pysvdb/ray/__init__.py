"""pysvdb on a Ray cluster: collections split into shard actors (``pip install pysvdb[ray]``).

::

    import ray
    from pysvdb.ray import RayClient

    ray.init()
    client = RayClient("/data/svdb")          # a directory on each node's local disk
    col = client.create_collection("docs", shards=4)
    col.add(ids=["a"], embeddings=[[1.0, 0.0]])
    col.query(query_embeddings=[[1.0, 0.0]], n_results=1)

See docs/ray.md. ``import pysvdb`` never imports this package (nor ray).
"""

from __future__ import annotations

from ._client import RayClient, RayCollection, ShardUnavailableError

__all__ = ["RayClient", "RayCollection", "ShardUnavailableError"]
