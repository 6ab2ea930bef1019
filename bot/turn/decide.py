"""Deciding a turn: where its facts come from (an order, a policy, the cards shown, the catalog's assortment, a
search), and what the reply rests on. Replies and agents' drafts are grounded here alike (``Dialogue.ground``
embeds the message, then calls :meth:`Grounder.ground` in a thread).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from bot.comparison import claimed_price, named_products
from bot.personalize import Personalizer
from bot.routing import (
    PRICE_MATCH,
    SERVER_REPLIES,
    Route,
    catalog_reply,
    complaint_grounding,
    order_grounding,
    policy_grounding,
    route,
)
from bot.signals import Intent
from bot.turn.acts import ActGuess, ActModel
from bot.turn.answers import answer
from bot.turn.assortment import answer_assortment
from bot.turn.refine import colour_first, refinement
from bot.turn.retrieve import retrieve
from bot.turn.state import DialogueState
from bot.turn.understand import Act, understand
from retrieval.catalog import ProductDoc
from retrieval.search import ProductSearch


@dataclass(frozen=True)
class Grounded:
    """What one reply rests on: products (product route) or order/policy facts."""

    products: list[ProductDoc]
    scores: list[float]
    reasons: list[str]
    constraint: str
    profile: str | None
    facts: str | None = None
    opening: str = ""
    intent: Intent | None = None
    route: str = "product"
    act: str | None = None  # what the message did to the shown products (bot/turn/understand.py)
    focus: list[str] = field(default_factory=list)  # the shown products it was about
    language: str = "en"  # the shopper's (bot/turn/language.py)
    need: str | None = None  # a refinement's list answers the need before it ("got those in navy?")
    message_act: ActGuess | None = None  # the act classifier's reading of the message (bot/turn/acts.py)


@dataclass(frozen=True)
class GroundingConfig:
    """What grounding needs of the turn's configuration."""

    retrieve_k: int
    policies: dict[str, str]
    price_match: str
    server_answers: bool = True  # off: the model writes every reply from the same grounding (a benchmark's baseline)


class Grounder:
    """Routes a message and gathers the facts its reply must rest on."""

    def __init__(self, *, factory: sessionmaker[Session], search: ProductSearch, config: GroundingConfig,
                 personalizer: Personalizer | None = None, acts: ActModel | None = None) -> None:
        self.factory = factory
        self.acts = acts
        self.search = search
        self.config = config
        self.personalizer = personalizer

    def ground(self, user_id: int, text: str, earlier: list[str], query: np.ndarray | None,
               intent: Intent | None, state: DialogueState, vector: np.ndarray | None = None) -> Grounded:
        """Route the message by its act and intent and gather the facts the reply must rest on. ``vector``: the
        message's own embedding, which the act classifier reads."""
        guess = None
        if self.acts is not None:
            vector = self.search.encoder.encode_query(text) if vector is None else vector
            guess = self.acts.predict([text], vector[None])[0]
        ground = self._ground if self.config.server_answers else self._model_only
        return replace(ground(user_id, text, earlier, query, intent, state, guess), message_act=guess)

    def _model_only(self, user_id: int, text: str, earlier: list[str], query: np.ndarray | None,
                    intent: Intent | None, state: DialogueState, guess: ActGuess | None) -> Grounded:
        """The grounding with nothing of the reply written by the server: an order or policy question gets its
        facts, anything else the products retrieved; the model states every answer."""
        where = route(text, intent.label if intent else None, intent.confidence if intent else 1.0, act=guess)
        if where.kind in ("order", "complaint", "policy") and (where.kind != "policy" or where.topic in
                                                               self.config.policies):
            with self.factory() as session:
                g = policy_grounding(str(where.topic), dict(self.config.policies)) if where.kind == "policy" \
                    else order_grounding(session, user_id=user_id, number=where.order_number)
            return Grounded([], [], [], "", None, facts=g.facts, intent=intent, route=where.kind)
        products, scores, reasons, constraint, profile = retrieve(
            self.search, self.personalizer, user_id=user_id, text=text, earlier=earlier, k=self.config.retrieve_k,
            query=query)
        return Grounded(products, scores, reasons, constraint, profile, intent=intent)

    def _ground(self, user_id: int, text: str, earlier: list[str], query: np.ndarray | None,
                intent: Intent | None, state: DialogueState, guess: ActGuess | None) -> Grounded:
        where = route(text, intent.label if intent else None, intent.confidence if intent else 1.0, act=guess)
        if where.kind == "policy" and where.topic not in self.config.policies:
            where = Route("product")
        if where.kind in SERVER_REPLIES:  # declined, or told how to reach a human: the model is not asked
            return Grounded([], [], [], "", None, opening=SERVER_REPLIES[where.kind], intent=intent, route=where.kind)
        if where.order_number is None and where.kind not in ("complaint", "price_match") \
                and (about := self._about_shown(text, state, intent, where)) is not None:
            return about
        if where.kind == "complaint":  # an apology and the order's real status, never a product
            with self.factory() as session:
                g = complaint_grounding(session, user_id=user_id, number=where.order_number)
        elif where.kind == "order":
            with self.factory() as session:
                g = order_grounding(session, user_id=user_id, number=where.order_number)
        elif where.kind == "policy":
            g = policy_grounding(str(where.topic), dict(self.config.policies))
        elif where.kind == "product" and (found := answer_assortment(
                self.search, text, state.need, self.config.retrieve_k)) is not None:
            n = len(found.cards)  # "do you sell X?", "the cheapest X?": the catalog's answer, no model call
            return Grounded(found.cards, [0.0] * n, ["catalog"] * n, "", None, opening=found.text, intent=intent,
                            route=found.act, focus=[p.sku for p in found.cards[:1]])
        else:
            wants = refinement(text, state.need, self.search, guess)  # "got those in navy?": the need, in navy
            products, scores, reasons, constraint, profile = retrieve(
                self.search, self.personalizer, user_id=user_id, text=wants.text if wants else text, earlier=earlier,
                k=self.config.retrieve_k, query=query, filters=wants.filters if wants else None)
            if wants:
                order = colour_first(text, products)
                products, scores, reasons = [products[i] for i in order], [scores[i] for i in order], \
                    [reasons[i] for i in order]
            if named := self._named_missed(text, products):
                keep = max(0, self.config.retrieve_k - len(named))
                products, scores, reasons = [*named, *products[:keep]], [0.0] * len(named) + scores[:keep], \
                    ["named"] * len(named) + reasons[:keep]
            talked_about = state.focus[:1] or state.shown[:1]  # "anything cheaper?" after a list: than its first
            shown = self.search.index.get(talked_about[0]) if talked_about else None
            price_match = self.config.price_match if where.kind == "price_match" else None
            if served := catalog_reply(text, products, shown, price_match):  # the catalog answers: no model call
                return Grounded(products, scores, reasons, constraint, profile, opening=served[1], intent=intent,
                                route=served[0])
            return Grounded(products, scores, reasons, constraint, profile, intent=intent,
                            need=state.need if wants else None)
        return Grounded([], [], [], "", None, facts=g.facts, opening=g.opening, intent=intent, route=where.kind)

    def _named_missed(self, text: str, products: list[ProductDoc]) -> list[ProductDoc]:
        """The product a price claim or a price-match request names in full ("is the <title> really only $1?"),
        with any others of that displayed title, when the search did not bring them up: the catalog's answer is
        about what the shopper named."""
        if (claimed_price(text) is None and not PRICE_MATCH.search(text)) or named_products(text, products):
            return []
        groups = named_products(text, self.search.lexical_docs(text, 10))
        if len(groups) != 1 or any(p.title != groups[0][0].title for p in groups[0]):
            return []
        return groups[0][: self.config.retrieve_k]

    def _about_shown(self, text: str, state: DialogueState, intent: Intent | None, where: Route
                     ) -> Grounded | None:
        """The catalog's answer to a message about the products on the cards, or None (a search, an order...).
        Pronouns do not count on the order route ("where is it?" after an order question is about the order); the
        intent model reads "ill take it" as a returns question, so they count on the policy route."""
        shown = [p for p in map(self.search.index.get, state.shown) if p is not None]
        if not shown or len(shown) != len(state.shown):  # no cards, or one left the catalog: search anew
            return None
        focus = [state.shown.index(s) for s in state.focus]
        act = understand(text, shown, focus, loose=where.kind in ("product", "policy"))
        if act is None:
            return None
        cards = shown
        if act.kind == "compare":  # the answer first: "I'll take it" after "which is cheaper?" means that one
            ranked = sorted(act.refs, key=lambda i: shown[i].price, reverse=act.dearest)
            act = replace(act, refs=ranked if len(ranked) > 2 else ranked[:2])
        if act.kind == "decide" and act.refs:  # the chosen product's card, with its add-to-cart
            cards, act = [shown[act.refs[0]]], Act("decide", refs=[0])
        refs = act.refs[:1] if act.kind == "compare" and len(act.refs) > 2 else act.refs
        return Grounded(cards, [0.0] * len(cards), ["shown"] * len(cards), state.constraint, None,
                        opening=answer(act, cards), intent=intent, route="shown", act=act.kind,
                        focus=[cards[i].sku for i in refs])
