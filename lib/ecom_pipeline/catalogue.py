"""The store's catalogue shape: categories, sub-categories, brands, prices and margins.

Also the canonical values of the categorical columns of the CSV contract,
shared by the generator and the clean stage.
"""

from __future__ import annotations

from dataclasses import dataclass

ORDER_STATUSES = ("pending", "processing", "shipped", "delivered", "cancelled", "returned")
# What counts as revenue, defined once (warehouse.dim_status.is_revenue carries it to every query).
REVENUE_STATUSES = ("pending", "processing", "shipped", "delivered")
PAYMENT_METHODS = ("credit_card", "debit_card", "upi", "cash_on_delivery", "net_banking", "wallet")


@dataclass(frozen=True)
class Category:
    name: str
    sub_categories: tuple[str, ...]
    brands: tuple[str, ...]
    price_range: tuple[float, float]
    margin_range: tuple[float, float]


CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        Category(
            "Electronics",
            ("Smartphones", "Laptops", "Headphones", "Cameras", "Smartwatches"),
            ("Voltix", "Nimbus", "Arcline", "Quanta", "Helio"),
            (40.0, 1500.0),
            (0.08, 0.25),
        ),
        Category(
            "Home & Kitchen",
            ("Cookware", "Furniture", "Bedding", "Appliances", "Decor"),
            ("Casa Nova", "Hearthly", "Oakridge", "Brio", "Lumen"),
            (10.0, 600.0),
            (0.20, 0.45),
        ),
        Category(
            "Fashion",
            ("Shirts", "Dresses", "Shoes", "Jackets", "Accessories"),
            ("Modaé", "Threadline", "Urbano", "Velour", "Kite & Co"),
            (8.0, 250.0),
            (0.35, 0.60),
        ),
        Category(
            "Sports & Outdoors",
            ("Fitness", "Camping", "Cycling", "Team Sports", "Running"),
            ("Summit", "Stride", "Trailhead", "Apex", "Ríoverde"),
            (10.0, 400.0),
            (0.20, 0.40),
        ),
        Category(
            "Beauty",
            ("Skincare", "Makeup", "Haircare", "Fragrance", "Bath"),
            ("Belle Rose", "Pure Dew", "Aurélie", "Glow Lab", "Sakura"),
            (4.0, 120.0),
            (0.40, 0.65),
        ),
        Category(
            "Books",
            ("Fiction", "Non-fiction", "Children", "Comics", "Education"),
            ("Pagecraft", "Inkwell", "Northbound", "Folio", "Lantern"),
            (5.0, 60.0),
            (0.15, 0.35),
        ),
        Category(
            "Toys & Games",
            ("Board Games", "Puzzles", "Dolls", "Building Sets", "Outdoor Toys"),
            ("Playnest", "Brickworks", "Jolly", "Wonderkin", "Zoomi"),
            (5.0, 150.0),
            (0.30, 0.50),
        ),
    )
}

PRODUCT_WORDS = ("Pro", "Max", "Lite", "Classic", "Plus", "Air", "Prime", "Eco", "Flex", "One", "Neo", "Ultra")
