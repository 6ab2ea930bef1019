"""``aisle bench assortment``: when does the store not carry something? Calibrates the margin of a store's
own threshold over its probes (:data:`bot.turn.assortment.PROBE_MARGIN`), beside one threshold for every
store (:data:`bot.turn.assortment.CARRIED_MIN_SCORE`), on labelled product words (``assortment_queries.json``) over the
demo store and, with ``--catalog``, a store imported from that file (the Online Retail catalog, say).

Each store is read with what it sells said the way shoppers say it (mostly not in the titles' words) and with
what neither store sells (an absent word that a store's titles do hold is left out for that store). For each
threshold, the share of words decided right: carried for the present, not carried for the absent; and which
ones were wrong at the chosen threshold: the one of least cost over the stores, where a product the store sells
called not carried costs :data:`MISSED_SALE`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUERIES = Path(__file__).with_name("assortment_queries.json")
MISSED_SALE = 2
"""A product the store sells called not carried costs this many times a product it does not sell called carried
(the first turns a shopper away; the second shows the closest products)."""
MARGINS = [round(0.02 * i, 2) for i in range(8)]
"""Margins over a store's probes (bot.turn.assortment.store_threshold) tried."""
THRESHOLDS = [round(0.30 + 0.025 * i, 3) for i in range(21)]


@dataclass(frozen=True)
class AssortmentBenchArgs:
    json_out: Path
    catalog: Path | None = None


def queries() -> dict[str, Any]:
    return {k: v for k, v in json.loads(QUERIES.read_text()).items() if not k.startswith("_")}


def decide(search: Any, present: Sequence[str], absent: Sequence[str], thresholds: Sequence[float]
           ) -> dict[str, Any]:
    """Right per threshold over the labelled words, the words' paths ("title" or "encoder"), and the misses."""
    from bot.turn.assortment import assortment, stem, store_threshold

    titles: set[str] = set()
    for doc in search.index.docs:
        if doc is not None:
            titles.update(stem(w) for w in doc.title.lower().split())
    absent = [a for a in absent if not all(stem(w) in titles for w in a.split())]
    labelled = [(w, True) for w in present] + [(w, False) for w in absent]
    found = {w: assortment(search, w.split(), min_score=0.0) for w, _ in labelled}
    best_score = {w: hits[0].score if hits else 0.0
                  for (w, _), hits in zip(labelled, search.nearest([w for w, _ in labelled], 1), strict=True)}

    def row(t: float) -> dict[str, float]:
        right = cost = 0
        for w, carried in labelled:
            says = found[w].how == "title" or best_score[w] >= t
            right += says == carried
            cost += 0 if says == carried else (MISSED_SALE if carried else 1)
        return {"threshold": round(t, 3), "right": round(right / len(labelled), 3),
                "cost": round(cost / len(labelled), 3)}

    per_store = [{"margin": m, **row(store_threshold(search, margin=m))} for m in MARGINS]
    return {"present": len(present), "absent": len(absent), "by_threshold": [row(t) for t in thresholds],
            "by_margin": per_store,
            "by_title": sum(found[w].how == "title" for w, _ in labelled),
            "scores": {w: round(best_score[w], 3) for w, _ in labelled},
            "labels": {w: carried for w, carried in labelled}, "paths": {w: found[w].how for w, _ in labelled}}


def main(args: AssortmentBenchArgs) -> int:
    """Every labelled word through the decision on each store; the threshold right most often over both."""
    from bot.config import get_settings
    from bot.db import make_engine, session_factory
    from bot.model_store import encoder_dir
    from bot.store import open_index
    from retrieval.embed import Encoder
    from retrieval.index import ProductIndex
    from retrieval.search import ProductSearch

    settings = get_settings()
    q = queries()
    encoder = Encoder(encoder_dir())
    factory = session_factory(make_engine(settings.db_url))
    searches = {"demo": ProductSearch(open_index(factory, encoder, settings.index_dir,
                                                 say=lambda t: print(t, file=sys.stderr)), encoder)}
    if args.catalog is not None:  # a store the adapter never saw, indexed in memory
        from retrieval.importers import import_catalog

        products = import_catalog(args.catalog).products
        index = ProductIndex(encoder.dim)
        index.upsert(products, encoder.encode_documents([p.embedding_text() for p in products]))
        searches["online_retail"] = ProductSearch(index, encoder)
    stores = {name: decide(s, q["present"].get(name, []), q["absent"], THRESHOLDS) for name, s in searches.items()}
    joint = [sum(st["by_threshold"][i]["cost"] for st in stores.values()) / len(stores)
             for i in range(len(THRESHOLDS))]
    best = min(range(len(THRESHOLDS)), key=lambda i: (joint[i], -THRESHOLDS[i]))
    chosen = THRESHOLDS[best]
    by_margin = [sum(st["by_margin"][i]["cost"] for st in stores.values()) / len(stores) for i in range(len(MARGINS))]
    m_best = min(range(len(MARGINS)), key=lambda i: (by_margin[i], MARGINS[i]))
    result = {"chosen": chosen, "cost_at_chosen": round(joint[best], 3), "missed_sale_weight": MISSED_SALE,
              "margin": MARGINS[m_best], "cost_at_margin": round(by_margin[m_best], 3),
              "per_store_at_margin": {n: st["by_margin"][m_best] for n, st in stores.items()}, "stores": {}}
    for name, st in stores.items():
        wrong = [w for w, carried in st["labels"].items()
                 if (st["paths"][w] == "title" or (st["paths"][w] == "encoder" and st["scores"][w] >= chosen))
                 != carried]
        result["stores"][name] = {k: v for k, v in st.items() if k not in ("labels", "paths")} | {
            "right_at_chosen": next(r["right"] for r in st["by_threshold"] if r["threshold"] == chosen),
            "wrong_at_chosen": wrong}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2))
    print(json.dumps({"one threshold": chosen, **{n: {"right": s["right_at_chosen"], "wrong": s["wrong_at_chosen"]}
                                                  for n, s in result["stores"].items()},
                      "per store": {"margin": result["margin"], **result["per_store_at_margin"]}}, indent=2))
    return 0
