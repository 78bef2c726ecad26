"""Stage III: the adaptation network AN(image ⊕ PL2) -> PL3, and the synthetic pseudo-labels it trains on."""
