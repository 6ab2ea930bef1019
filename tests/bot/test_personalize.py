from __future__ import annotations

from bot.personalize import Personalizer
from retrieval.embed import Encoder
from retrieval.index import ProductIndex
from retrieval.query import Filters
from tests.bot.personas import PERSONAS, add_personas


def test_profiles_come_from_sql_behaviour_and_change_what_is_offered(factory, index: ProductIndex,  # type: ignore[no-untyped-def]
                                                                      encoder: Encoder) -> None:
    ids = add_personas(factory)
    personalizer = Personalizer(factory, index)
    vague = encoder.encode_query("what would you recommend for me?")
    offered = {}
    for name, category in PERSONAS.items():
        profile = personalizer.profile(ids[name])
        assert category.lower() in profile.describe()
        mine = personalizer.recommend(ids[name], vague, 0.2, 5, Filters())
        recs = mine.recommendations
        assert mine.segment is not None and mine.describe().endswith(f"segment: {mine.segment.name}")
        assert len(recs) == 5 and sum(r.product.category == category for r in recs) >= 3
        offered[name] = {r.product.sku for r in recs}
    assert offered["runner"] != offered["cook"]


def test_a_factual_question_gets_the_same_product_for_both(factory, index: ProductIndex, encoder: Encoder) -> None:  # type: ignore[no-untyped-def]
    ids = add_personas(factory)
    personalizer = Personalizer(factory, index)
    target = next(d for d in index.docs if d is not None and d.category == "Headphones & Audio")
    q = encoder.encode_query(f"how much is the {target.title}?")
    best = index.search(q, 1)[0]
    tops = [personalizer.recommend(ids[n], q, best.score, 5, Filters()).recommendations[0].product for n in PERSONAS]
    assert tops[0] == tops[1] == best.product


def test_clicks_and_carts_teach_the_explorer(factory, index: ProductIndex, encoder: Encoder) -> None:  # type: ignore[no-untyped-def]
    ids = add_personas(factory)
    personalizer = Personalizer(factory, index)
    vague = encoder.encode_query("what would you recommend for me?")
    recs = personalizer.recommend(ids["runner"], vague, 0.2, 5, Filters()).recommendations
    assert recs[-1].reason == "explore"
    sku = recs[-1].product.sku
    before = personalizer.explorer.mean([sku])[0]
    personalizer.shown([sku])
    personalizer.feedback(sku, "cart")
    personalizer.feedback(sku, "view")  # not a reward
    assert personalizer.explorer.mean([sku])[0] > before


def test_cold_shoppers_get_no_personal_ranking(factory, index: ProductIndex, encoder: Encoder) -> None:  # type: ignore[no-untyped-def]
    from bot import crud

    with factory() as s, s.begin():
        new_id = crud.get_or_create_user(s, external_id="brand-new").id
    mine = Personalizer(factory, index).recommend(new_id, encoder.encode_query("tent"), 0.6, 5, Filters())
    assert mine.profile.cold and mine.recommendations == [] and mine.segment is None
