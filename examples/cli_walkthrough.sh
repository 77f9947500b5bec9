#!/usr/bin/env bash
# A walk-through of the svdb command line, offline, in a few seconds: vectors
# are generated with numpy (fixed seed), imported, inspected, queried,
# checked, compacted and exported again.
#
#   bash examples/cli_walkthrough.sh [WORKDIR]
#
# Uses `python3 -m pysvdb.cli` (the same as the `svdb` console script), so it
# runs from a source checkout too (PYTHONPATH=. SVDB_LIBRARY=build/libsvdb.so).
set -euo pipefail

work=${1:-$(mktemp -d)}
mkdir -p "$work"
cd "$work"
svdb() { python3 -m pysvdb.cli "$@"; }

echo "== data: 5,000 random 32-d vectors, and 200 rows with metadata and documents"
python3 - <<'PY'
import json
import numpy as np

rng = np.random.default_rng(42)
np.save("vectors.npy", rng.standard_normal((5000, 32)).astype(np.float32))
with open("articles.jsonl", "w") as f:
    for i in range(200):
        row = {"id": "article-%d" % i, "embedding": rng.standard_normal(32).round(4).tolist(),
               "metadata": {"year": 2000 + i % 25, "topic": ["fruit", "sport", "news"][i % 3]},
               "document": "article %d about %s" % (i, ["apples", "tennis", "elections"][i % 3])}
        f.write(json.dumps(row) + "\n")
PY

echo "== import into a collection directory (ids 'vec-0'...), HNSW, cosine"
svdb import vectors_db vectors.npy --id-prefix vec- --index hnsw --metric cosine --batch-size 1000

echo "== import into a ChromaDB client directory, collection 'articles'"
svdb import chroma_dir articles.jsonl --collection articles --metric cosine

echo "== info"
svdb info vectors_db
svdb info chroma_dir --json > info.json
python3 -c "import json; r = json.load(open('info.json')); print('chroma_dir holds', [(c['name'], c['count']) for c in r['collections']])"

echo "== query: the 3 rows nearest to the first row of the file, then with filters"
svdb query vectors_db --from vectors.npy -k 3
svdb query chroma_dir -c articles --from articles.jsonl -k 3 --where '{"topic": "fruit"}'
svdb query chroma_dir -c articles --from articles.jsonl -k 2 --where-document '{"$contains": "tennis"}' --json

echo "== verify, checkpoint, compact"
svdb verify vectors_db
svdb checkpoint chroma_dir
svdb compact vectors_db

echo "== export and compare"
svdb export chroma_dir articles_out.parquet -c articles
svdb export vectors_db vectors_out.npy --ids-to ids_out.txt
python3 - <<'PY'
import numpy as np
assert (np.load("vectors_out.npy") == np.load("vectors.npy")).all()
assert open("ids_out.txt").read().split() == ["vec-%d" % i for i in range(5000)]
print("vectors_out.npy equals vectors.npy; ids kept in ids_out.txt")
PY

echo "== a bad file is refused and imports nothing"
printf '{"id": "x", "embedding": [1, 2]}\n{"id": "y", "embedding": [1, 2' > bad.jsonl
if svdb import chroma_dir bad.jsonl -c articles; then echo "expected a failure" >&2; exit 1; fi

echo "walk-through done in $work"
