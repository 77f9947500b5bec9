"""The data sets of the ANN benchmark, as fvecs/ivecs files every driver reads.

- ``siftsmall``, ``fashion_mnist``, ``glove25``: ``../shared/data`` as they are.
- ``fashion60k``: the whole Fashion-MNIST training set (60,000 x 784) from the
  Debian package dataset-fashion-mnist; queries are test images 0..999 (as in
  ``fashion_mnist``); ground truth computed here by exact search.
- ``gen1m``: 1,000,000 x 128 generated deterministically: 1,000 clusters,
  each a Gaussian on a random 16-dimensional subspace around a random centre,
  plus isotropic noise (so the intrinsic dimension is about that of SIFT);
  1,000 queries from the same distribution; ground truth by exact search.

Generated files are cached under the cache directory and reused.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import asdict, dataclass
from typing import Dict, List

import numpy as np
import numpy.typing as npt

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
GT_K = 100

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]


@dataclass(frozen=True)
class DataSet:
    name: str
    metric: str  # "l2" or "cosine"
    base: str  # fvecs
    query: str  # fvecs
    gt: str  # ivecs, top-100 row numbers per query, nearest first
    n: int
    dim: int
    nq: int
    description: str

    def to_json(self) -> Dict[str, object]:
        return asdict(self)


def read_vecs(path: str, dtype: type = np.float32) -> npt.NDArray[np.generic]:
    """A texmex .fvecs/.ivecs file as an (n, d) array."""
    raw = np.fromfile(path, dtype=np.int32)
    d = int(raw[0])
    return raw.reshape(-1, d + 1)[:, 1:].view(dtype).copy()


def write_vecs(path: str, x: npt.NDArray[np.generic]) -> None:
    """Writes x (float32 or int32, 2-d) as .fvecs/.ivecs, atomically."""
    n, d = x.shape
    out = np.empty((n, d + 1), dtype=np.int32)
    out[:, 0] = d
    out[:, 1:] = x.view(np.int32) if x.dtype == np.float32 else x
    tmp = path + ".tmp"
    out.tofile(tmp)
    os.replace(tmp, path)


def exact_knn(base: F32, queries: F32, metric: str, k: int = GT_K) -> I32:
    """Exact top-k row numbers: candidates by float32 matrix products, then
    the top 2k candidates re-ranked in float64 (ties by row number)."""
    b = base.astype(np.float32)
    q = queries.astype(np.float32)
    if metric == "cosine":
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    norms = np.einsum("ij,ij->i", b, b)
    cand_k = min(2 * k, len(b))
    out = np.empty((len(q), k), dtype=np.int32)
    step = max(1, int(1e8 // max(1, len(b))))  # 400 MB of scores (and 800 MB of indices) per chunk
    for s in range(0, len(q), step):
        qs = q[s : s + step]
        scores = norms[None, :] - 2.0 * (qs @ b.T) if metric == "l2" else -(qs @ b.T)
        cand = np.argpartition(scores, cand_k - 1, axis=1)[:, :cand_k]
        for i, row in enumerate(cand):
            qi = qs[i].astype(np.float64)
            vecs = b[row].astype(np.float64)
            if metric == "l2":
                d = ((vecs - qi) ** 2).sum(axis=1)
            else:
                d = 1.0 - vecs @ qi
            order = np.lexsort((row, d))[:k]
            out[s + i] = row[order]
    return out


def _read_idx_images(path: str) -> F32:
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = np.frombuffer(data[:16], dtype=">i4")
    if magic != 2051:
        raise ValueError("%s is not an idx3 image file (magic %d)" % (path, magic))
    pixels = np.frombuffer(data[16:], dtype=np.uint8, count=int(n) * int(rows) * int(cols))
    return pixels.reshape(int(n), int(rows) * int(cols)).astype(np.float32)


def shared_sets(data_dir: str) -> List[DataSet]:
    out = []
    desc = {
        "siftsmall": "real SIFT descriptors (texmex siftsmall)",
        "fashion_mnist": "Fashion-MNIST, first 10,000 training images; queries: test images 0..999",
        "glove25": "GloVe Twitter 25-d, common words; cosine",
    }
    for name, metric in (("siftsmall", "l2"), ("fashion_mnist", "l2"), ("glove25", "cosine")):
        base = os.path.join(data_dir, name + "_base.fvecs")
        query = os.path.join(data_dir, name + "_query.fvecs")
        gt = os.path.join(data_dir, name + "_groundtruth.ivecs")
        b, q = read_vecs(base), read_vecs(query)
        out.append(DataSet(name, metric, base, query, gt, b.shape[0], b.shape[1], q.shape[0], desc[name]))
    return out


def fashion60k(cache: str, data_dir: str) -> DataSet:
    base, query, gt = (os.path.join(cache, "fashion60k_%s" % s) for s in ("base.fvecs", "query.fvecs", "gt.ivecs"))
    if not os.path.exists(gt):
        xb = _read_idx_images(os.path.join(FASHION_DIR, "train-images-idx3-ubyte.gz"))
        xq = _read_idx_images(os.path.join(FASHION_DIR, "t10k-images-idx3-ubyte.gz"))[:1000]
        shared = read_vecs(os.path.join(data_dir, "fashion_mnist_base.fvecs"))
        if not np.array_equal(xb[: len(shared)], shared):
            raise ValueError("the Debian training images do not start with ../shared/data's fashion_mnist base")
        print("computing exact ground truth of fashion60k ...", flush=True)
        write_vecs(base, xb)
        write_vecs(query, xq)
        write_vecs(gt, exact_knn(xb, xq, "l2"))
    return DataSet("fashion60k", "l2", base, query, gt, 60000, 784, 1000,
                   "Fashion-MNIST, all 60,000 training images; queries: test images 0..999")


def generate_clustered(n: int, nq: int, dim: int = 128, clusters: int = 1000, sub: int = 16,
                       seed: int = 20240611) -> "tuple[F32, F32]":
    """n base and nq query vectors: cluster centre N(0, 1)^dim, plus a point of
    N(0, 1)^sub on the cluster's random orthonormal subspace, plus N(0, 0.1^2)
    noise. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    bases = np.linalg.qr(rng.standard_normal((clusters, dim, sub)))[0].astype(np.float32)  # (clusters, dim, sub)

    def draw(count: int, r: np.random.Generator) -> F32:
        label = r.integers(0, clusters, count)
        out = np.empty((count, dim), dtype=np.float32)
        for c in range(clusters):
            rows = np.flatnonzero(label == c)
            z = r.standard_normal((len(rows), sub), dtype=np.float32)
            noise = r.standard_normal((len(rows), dim), dtype=np.float32) * np.float32(0.1)
            out[rows] = centres[c] + z @ bases[c].T + noise
        return out

    return draw(n, np.random.default_rng(seed + 1)), draw(nq, np.random.default_rng(seed + 2))


def gen1m(cache: str) -> DataSet:
    base, query, gt = (os.path.join(cache, "gen1m_%s" % s) for s in ("base.fvecs", "query.fvecs", "gt.ivecs"))
    if not os.path.exists(gt):
        print("generating gen1m (1,000,000 x 128) and its exact ground truth ...", flush=True)
        xb, xq = generate_clustered(1_000_000, 1000)
        write_vecs(base, xb)
        write_vecs(query, xq)
        write_vecs(gt, exact_knn(xb, xq, "l2"))
    return DataSet("gen1m", "l2", base, query, gt, 1_000_000, 128, 1000,
                   "generated: 1,000 Gaussian clusters on 16-d subspaces + noise (fixed seed)")


def prepare(data_dir: str, cache: str, quick: bool) -> List[DataSet]:
    """The sets of a run, generating and caching the large ones unless quick."""
    os.makedirs(cache, exist_ok=True)
    sets = shared_sets(data_dir)
    if not quick:
        sets += [fashion60k(cache, data_dir), gen1m(cache)]
    return sets
