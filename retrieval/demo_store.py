"""A believable, seeded demo store: catalog, shoppers with hidden tastes, behaviour.

Everything here is pure data (no database): ``generate(seed)`` returns the
same :class:`DemoStore` for the same seed. Shoppers have a hidden taste
(category weights, favourite brands, a price band); their events are drawn
from it, so a recommender can be judged on held-out purchases.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from retrieval.catalog import ProductDoc

EPOCH = datetime(2026, 3, 1, tzinfo=UTC)
HISTORY_DAYS = 240


@dataclass(frozen=True)
class CategorySpec:
    name: str
    code: str
    kinds: tuple[str, ...]
    brands: tuple[str, ...]
    features: tuple[str, ...]
    materials: tuple[str, ...]
    uses: tuple[str, ...]
    price: tuple[float, float]  # typical low / high


CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec("Running Shoes", "RUN", ("Road Running Shoe", "Trail Running Shoe", "Racing Flat", "Stability Running Shoe", "Cushioned Running Shoe"),
                 ("Stridelab", "Peakform", "Northpace", "Velora", "Kinetix"), ("waterproof", "breathable mesh", "carbon plate", "wide fit", "reflective", "lightweight"),
                 ("engineered mesh", "Gore-Tex membrane", "recycled knit", "synthetic suede"), ("daily training", "marathon racing", "muddy trails", "rainy commutes", "treadmill runs"), (45, 180)),
    CategorySpec("Hiking & Outdoor Boots", "HIK", ("Hiking Boot", "Approach Shoe", "Trekking Boot", "Winter Boot"),
                 ("Ridgeway", "Northpace", "Alpenhorn", "Timberline"), ("waterproof", "insulated", "Vibram sole", "ankle support", "quick-lace"),
                 ("full-grain leather", "nubuck", "ripstop nylon"), ("day hikes", "backpacking", "snowy trails", "rocky scrambles"), (60, 260)),
    CategorySpec("Outdoor Jackets", "JKT", ("Rain Jacket", "Down Jacket", "Softshell Jacket", "Fleece Jacket", "Windbreaker"),
                 ("Alpenhorn", "Ridgeway", "Skyline", "Northpace"), ("waterproof", "packable", "hooded", "insulated", "windproof", "breathable"),
                 ("recycled polyester", "goose down", "3-layer shell", "microfleece"), ("city rain", "alpine weather", "cold mornings", "travel"), (40, 320)),
    CategorySpec("Fitness & Yoga", "FIT", ("Yoga Mat", "Resistance Band Set", "Adjustable Dumbbell", "Foam Roller", "Kettlebell", "Jump Rope"),
                 ("Zenflow", "Kinetix", "Ironclad", "Velora"), ("non-slip", "extra thick", "eco-friendly", "adjustable", "compact"),
                 ("natural rubber", "TPE foam", "cast iron", "latex"), ("home workouts", "hot yoga", "strength training", "recovery days"), (12, 220)),
    CategorySpec("Cookware", "COOK", ("Nonstick Frying Pan", "Cast Iron Skillet", "Stainless Saucepan", "Dutch Oven", "Wok", "Stock Pot"),
                 ("Copperleaf", "Hearthstone", "Maison Blanc", "Chefwise"), ("induction-ready", "oven-safe", "dishwasher-safe", "pre-seasoned", "PFAS-free"),
                 ("tri-ply stainless steel", "enamelled cast iron", "hard-anodised aluminium", "carbon steel"), ("weeknight dinners", "searing steaks", "slow braises", "stir-fries"), (20, 280)),
    CategorySpec("Kitchen Appliances", "APPL", ("Blender", "Stand Mixer", "Air Fryer", "Espresso Machine", "Food Processor", "Electric Kettle"),
                 ("Chefwise", "Brevant", "Kitchora", "Maison Blanc"), ("quiet motor", "programmable", "compact", "large capacity", "easy-clean"),
                 ("brushed steel", "BPA-free plastic", "glass jar"), ("smoothies", "baking bread", "quick dinners", "morning coffee"), (30, 650)),
    CategorySpec("Coffee & Tea", "BREW", ("Whole Bean Coffee", "Ground Coffee", "Loose Leaf Tea", "Pour-Over Kit", "French Press", "Tea Sampler"),
                 ("Roastery Nine", "Leafhouse", "Brevant", "Morning Ritual"), ("single origin", "organic", "fair trade", "decaf", "dark roast", "light roast"),
                 ("arabica beans", "green tea leaves", "borosilicate glass"), ("pour-over mornings", "espresso", "afternoon tea", "gifting"), (8, 90)),
    CategorySpec("Headphones & Audio", "AUD", ("Wireless Earbuds", "Over-Ear Headphones", "Bluetooth Speaker", "Sport Earbuds", "Soundbar"),
                 ("Sonique", "Auralis", "Beatform", "Volta"), ("noise cancelling", "waterproof", "long battery life", "hi-res audio", "multipoint"),
                 ("aluminium", "memory foam cushions", "silicone tips"), ("commuting", "workouts", "home cinema", "travel"), (25, 450)),
    CategorySpec("Smart Home", "SMRT", ("Smart Plug", "Video Doorbell", "Smart Thermostat", "Security Camera", "Smart Bulb Pack", "Robot Vacuum"),
                 ("Homewise", "Lumio", "Nestor", "Volta"), ("voice control", "energy monitoring", "night vision", "app control", "Matter compatible"),
                 ("matte plastic", "aluminium"), ("home security", "saving energy", "pet owners", "apartments"), (15, 500)),
    CategorySpec("Laptop & Desk Accessories", "DESK", ("Laptop Stand", "Mechanical Keyboard", "Wireless Mouse", "USB-C Hub", "Monitor Light Bar", "Desk Mat"),
                 ("Deskforge", "Volta", "Keyloom", "Lumio"), ("ergonomic", "wireless", "backlit", "foldable", "multi-device"),
                 ("aluminium", "PBT keycaps", "vegan leather"), ("home office", "gaming", "travel work", "long coding sessions"), (15, 220)),
    CategorySpec("Skincare", "SKIN", ("Moisturiser", "Vitamin C Serum", "Sunscreen SPF 50", "Cleanser", "Night Cream", "Lip Balm"),
                 ("Purelle", "Dermaé", "Botanica", "Glowlab"), ("fragrance-free", "for sensitive skin", "vegan", "hydrating", "non-comedogenic"),
                 ("hyaluronic acid", "shea butter", "niacinamide", "aloe vera"), ("dry skin", "daily protection", "night routine", "travel"), (6, 95)),
    CategorySpec("Bedding & Home", "HOME", ("Duvet Cover", "Linen Sheet Set", "Memory Foam Pillow", "Weighted Blanket", "Throw Blanket", "Bath Towel Set"),
                 ("Slumberly", "Maison Blanc", "Hearthstone", "Linenry"), ("breathable", "hypoallergenic", "machine washable", "cooling", "extra soft"),
                 ("organic cotton", "French linen", "bamboo viscose", "memory foam"), ("hot sleepers", "guest rooms", "cosy evenings", "kids' rooms"), (20, 260)),
    CategorySpec("Camping Gear", "CAMP", ("Backpacking Tent", "Sleeping Bag", "Camping Stove", "Headlamp", "Trekking Poles", "Insulated Water Bottle"),
                 ("Timberline", "Ridgeway", "Alpenhorn", "Campfire Co"), ("ultralight", "waterproof", "3-season", "rechargeable", "compact"),
                 ("ripstop nylon", "aluminium", "stainless steel", "down fill"), ("backpacking", "car camping", "festivals", "emergencies"), (15, 480)),
    CategorySpec("Cycling", "CYC", ("Bike Helmet", "Bike Light Set", "Cycling Jersey", "Bike Lock", "Padded Cycling Shorts", "Mini Pump"),
                 ("Velora", "Spokes & Co", "Kinetix", "Roadline"), ("reflective", "rechargeable", "aero", "breathable", "anti-theft"),
                 ("polycarbonate", "hardened steel", "lycra"), ("commuting", "road racing", "night rides", "gravel"), (12, 240)),
    CategorySpec("Pet Supplies", "PET", ("Dog Bed", "Cat Tree", "Dog Harness", "Automatic Feeder", "Chew Toy Set", "Pet Carrier"),
                 ("Pawsome", "Tailwag", "Whiskerly", "Homewise"), ("washable", "orthopaedic", "escape-proof", "durable", "airline-approved"),
                 ("memory foam", "sisal rope", "nylon webbing"), ("large dogs", "indoor cats", "puppies", "travel"), (10, 200)),
    CategorySpec("Toys & Games", "TOY", ("Board Game", "Building Blocks Set", "Jigsaw Puzzle", "Remote Control Car", "Plush Toy", "Science Kit"),
                 ("Playforge", "Brightbox", "Tinker & Co", "Puzzlewood"), ("ages 8+", "family-friendly", "educational", "1000 pieces", "rechargeable"),
                 ("FSC wood", "recycled plastic", "soft plush"), ("game nights", "birthdays", "rainy days", "STEM learning"), (9, 150)),
)

COLOURS = ("black", "navy", "grey", "forest green", "sand", "red", "white", "teal", "charcoal", "olive")
REVIEW_TEXT = {
    1: ("Very disappointed. {t} broke within a week and support never answered.",
        "Terrible quality, {t} looked nothing like the photos. Returning it.",
        "Waste of money. The {m} started falling apart after two uses."),
    2: ("Not great. {t} is smaller than described and feels cheap.",
        "Expected better for the price; the {m} is flimsy and it arrived late.",
        "Meh. It works, barely, but I would not buy {t} again."),
    3: ("It's okay. {t} does the job, nothing special.",
        "Average. Fine for {u}, but the finish could be better.",
        "Decent but overpriced. The {m} is fine, the fit is so-so."),
    4: ("Really good. {t} works well for {u}; minor quibbles with sizing.",
        "Solid purchase, the {m} feels durable. Would recommend.",
        "Happy with it. Great for {u}, shipping was quick."),
    5: ("Absolutely love it! {t} is perfect for {u}.",
        "Excellent quality, the {m} is superb. Best purchase this year.",
        "Five stars. {t} exceeded my expectations, buying another as a gift."),
}
ORDER_STATUSES = ("processing", "shipped", "delivered", "cancelled", "returned")


@dataclass(frozen=True)
class Taste:
    """A shopper's hidden preferences; events are sampled from these."""

    category_weights: dict[str, float]
    brands: frozenset[str]
    price_band: float  # 0 = bargain hunter, 1 = premium


@dataclass(frozen=True)
class DemoShopper:
    external_id: str
    locale: str
    taste: Taste


@dataclass(frozen=True)
class DemoEvent:
    shopper: str
    sku: str | None
    type: str
    at: datetime
    session: str
    value: float | None = None
    query: str | None = None


@dataclass(frozen=True)
class DemoReview:
    shopper: str
    sku: str
    rating: int
    text: str
    at: datetime


@dataclass(frozen=True)
class DemoOrder:
    number: str
    shopper: str
    status: str
    items: list[dict[str, object]]
    total: float
    at: datetime


@dataclass
class DemoStore:
    products: list[ProductDoc]
    shoppers: list[DemoShopper]
    events: list[DemoEvent] = field(default_factory=list)
    reviews: list[DemoReview] = field(default_factory=list)
    orders: list[DemoOrder] = field(default_factory=list)


def _product(rng: random.Random, spec: CategorySpec, n: int) -> tuple[ProductDoc, float]:
    kind = rng.choice(spec.kinds)
    brand = rng.choice(spec.brands)
    feats = rng.sample(spec.features, k=rng.randint(1, 3))
    material = rng.choice(spec.materials)
    use = rng.choice(spec.uses)
    colour = rng.choice(COLOURS)
    tier = rng.random()  # 0 budget ... 1 premium
    lo, hi = spec.price
    price = round(math.exp(math.log(lo) + tier * (math.log(hi) - math.log(lo)) + rng.gauss(0, 0.08)), 0) - 0.01
    price = max(price, 2.99)
    lead = feats[0].capitalize() if len(feats[0]) < 18 else ""
    title = " ".join(p for p in (brand, lead, kind) if p) + f" ({colour})"
    description = (
        f"The {brand} {kind.lower()} is built from {material} for {use}. "
        f"Features: {', '.join(feats)}. Colour: {colour}."
    )
    stock = 0 if rng.random() < 0.08 else rng.randint(1, 120)
    attrs: dict[str, object] = {"colour": colour, "material": material, "features": feats}
    if "waterproof" in feats:
        attrs["waterproof"] = True
    sku = f"{spec.code}-{n:05d}"
    doc = ProductDoc(
        sku=sku, title=title, category=spec.name, price=price, description=description,
        brand=brand, stock=stock, attributes=attrs, image_url=f"/img/{sku}.svg",
    )
    quality = rng.gauss(0, 1)
    return doc, quality


def _taste(rng: random.Random) -> Taste:
    names = [c.name for c in CATEGORIES]
    focus = rng.sample(names, k=rng.choice((1, 2, 2, 3)))
    weights = {n: 0.04 for n in names}
    for i, n in enumerate(focus):
        weights[n] += 3.0 / (i + 1)
    total = sum(weights.values())
    brands = frozenset(rng.choice(c.brands) for c in CATEGORIES if c.name in focus)
    return Taste({k: v / total for k, v in weights.items()}, brands, rng.random())


def _affinity(doc: ProductDoc, quality: float, taste: Taste, tiers: dict[str, float]) -> float:
    score = math.log(taste.category_weights[doc.category]) * 1.5
    score += 1.2 if doc.brand in taste.brands else 0.0
    score -= 2.5 * abs(tiers[doc.sku] - taste.price_band)
    score += 0.4 * quality
    return score


def generate(seed: int = 7, n_products: int = 2400, n_shoppers: int = 600) -> DemoStore:
    """Generate the demo store; the same seed always gives the same store.

    Args:
        seed: random seed.
        n_products: catalog size (spread evenly over the categories).
        n_shoppers: number of shoppers with behaviour.
    """
    rng = random.Random(seed)
    products: list[ProductDoc] = []
    quality: dict[str, float] = {}
    tiers: dict[str, float] = {}
    per_cat = max(1, n_products // len(CATEGORIES))
    for spec in CATEGORIES:
        lo, hi = spec.price
        for i in range(per_cat):
            doc, q = _product(rng, spec, i + 1)
            products.append(doc)
            quality[doc.sku] = q
            tiers[doc.sku] = min(1.0, max(0.0, math.log(doc.price / lo) / math.log(hi / lo)))
    by_cat: dict[str, list[ProductDoc]] = {}
    for doc in products:
        by_cat.setdefault(doc.category, []).append(doc)

    store = DemoStore(products=products, shoppers=[])
    order_no = 10000
    for s in range(n_shoppers):
        taste = _taste(rng)
        shopper = DemoShopper(f"shopper-{s + 1:04d}", rng.choice(("en", "en", "en-GB", "de", "fr")), taste)
        store.shoppers.append(shopper)
        n_sessions = rng.randint(3, 14)
        starts = sorted(rng.uniform(0, HISTORY_DAYS) for _ in range(n_sessions))
        for sn, day in enumerate(starts):
            at = EPOCH + timedelta(days=day, minutes=rng.randint(0, 1439))
            session = f"{shopper.external_id}-s{sn}"
            cats = list(taste.category_weights)
            cat = rng.choices(cats, weights=[taste.category_weights[c] for c in cats])[0]
            spec = next(c for c in CATEGORIES if c.name == cat)
            store.events.append(DemoEvent(shopper.external_id, None, "search", at, session,
                                          query=f"{rng.choice(spec.features)} {rng.choice(spec.kinds).lower()}"))
            pool = by_cat[cat]
            weights = [math.exp(_affinity(d, quality[d.sku], taste, tiers)) for d in pool]
            viewed = {d.sku: d for d in rng.choices(pool, weights=weights, k=rng.randint(2, 7))}
            bought: list[ProductDoc] = []
            for doc in viewed.values():
                at += timedelta(seconds=rng.randint(20, 400))
                store.events.append(DemoEvent(shopper.external_id, doc.sku, "view", at, session))
                a = _affinity(doc, quality[doc.sku], taste, tiers)
                p_click = 1 / (1 + math.exp(-(a + 2.0)))
                if rng.random() < p_click:
                    store.events.append(DemoEvent(shopper.external_id, doc.sku, "click", at, session))
                    if rng.random() < p_click * 0.7:
                        store.events.append(DemoEvent(shopper.external_id, doc.sku, "cart", at, session))
                        if rng.random() < 0.6 and doc.stock > 0:
                            bought.append(doc)
            if not bought:
                continue
            at += timedelta(minutes=rng.randint(1, 30))
            days_ago = (EPOCH + timedelta(days=HISTORY_DAYS) - at).days
            status = ("processing" if days_ago < 2 else "shipped" if days_ago < 6 else
                      rng.choices(ORDER_STATUSES[2:], weights=(0.85, 0.08, 0.07))[0])
            order_no += 1
            items = [{"sku": d.sku, "title": d.title, "qty": 1, "price": d.price} for d in bought]
            store.orders.append(DemoOrder(f"A{order_no}", shopper.external_id, status, items,
                                          round(sum(d.price for d in bought), 2), at))
            if status == "cancelled":
                continue
            for doc in bought:
                store.events.append(DemoEvent(shopper.external_id, doc.sku, "purchase", at, session, value=doc.price))
                if status == "returned":
                    store.events.append(DemoEvent(shopper.external_id, doc.sku, "return",
                                                  at + timedelta(days=12), session, value=doc.price))
                if rng.random() < 0.35:
                    stars = min(5, max(1, round(3.6 + 1.1 * quality[doc.sku] + rng.gauss(0, 0.8))))
                    spec = next(c for c in CATEGORIES if c.name == doc.category)
                    text = rng.choice(REVIEW_TEXT[stars]).format(
                        t=doc.title.split(" (")[0], m=doc.attributes["material"], u=rng.choice(spec.uses))
                    when = at + timedelta(days=rng.randint(3, 20))
                    store.reviews.append(DemoReview(shopper.external_id, doc.sku, stars, text, when))
                    store.events.append(DemoEvent(shopper.external_id, doc.sku, "review", when, session, value=stars))
    store.events.sort(key=lambda e: (e.at, e.shopper))
    return store
