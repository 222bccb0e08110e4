"""Metrics Pulseboard knows out of the box: business KPIs, search (RAG) quality and application health.

They are registered like any pushed metric, so an application records them through the same API.
Rates are kept as numerator and denominator counters (conversions and sessions, not a conversion
ratio), so that a rate over any range and any rollup step is exact.
"""

from __future__ import annotations

from ingest.registration import pushed

BUSINESS = (
    pushed(
        "pulseboard_business_revenue_total", "counter", "Revenue from orders.", "currency", (), "business"
    ),
    pushed("pulseboard_business_orders_total", "counter", "Orders placed.", "count", ("region",), "business"),
    pushed(
        "pulseboard_business_sessions_total", "counter", "Shop sessions started.", "count", (), "business"
    ),
    pushed(
        "pulseboard_business_conversions_total",
        "counter",
        "Sessions that ended in an order; conversion rate is conversions over sessions.",
        "count",
        (),
        "business",
    ),
    pushed("pulseboard_business_carts_created_total", "counter", "Carts created.", "count", (), "business"),
    pushed(
        "pulseboard_business_carts_abandoned_total",
        "counter",
        "Carts left without an order; abandonment is abandoned over created.",
        "count",
        (),
        "business",
    ),
    pushed(
        "pulseboard_business_satisfaction_score",
        "gauge",
        "Customer satisfaction, 1 (poor) to 5 (excellent).",
        "none",
        (),
        "business",
    ),
)

RAG = (
    pushed(
        "pulseboard_rag_search_latency_seconds", "histogram", "Time to answer a search.", "seconds", (), "rag"
    ),
    pushed(
        "pulseboard_rag_search_accuracy_ratio",
        "gauge",
        "Share of searches whose top result was relevant.",
        "ratio",
        (),
        "rag",
    ),
    pushed(
        "pulseboard_rag_recommendation_relevance_ratio",
        "gauge",
        "Share of recommendations judged relevant.",
        "ratio",
        (),
        "rag",
    ),
    pushed(
        "pulseboard_rag_knowledge_coverage_ratio",
        "gauge",
        "Share of questions the knowledge base covers.",
        "ratio",
        (),
        "rag",
    ),
    pushed(
        "pulseboard_rag_query_complexity_score",
        "gauge",
        "Mean query complexity (terms and filters per query).",
        "none",
        (),
        "rag",
    ),
    pushed("pulseboard_rag_embedding_seconds", "histogram", "Time to embed a query.", "seconds", (), "rag"),
    pushed(
        "pulseboard_rag_vector_search_seconds",
        "histogram",
        "Time of the nearest-neighbour search.",
        "seconds",
        (),
        "rag",
    ),
)

APPLICATION = (
    pushed(
        "pulseboard_app_request_duration_seconds",
        "histogram",
        "Time the application took to answer an API request.",
        "seconds",
        ("endpoint",),
        "application",
    ),
    pushed(
        "pulseboard_app_errors_total",
        "counter",
        "Errors the application answered, by type.",
        "count",
        ("type",),
        "application",
    ),
    pushed(
        "pulseboard_app_cache_requests_total",
        "counter",
        "Cache look-ups, by result (hit or miss).",
        "count",
        ("result",),
        "application",
    ),
)

CATALOG = BUSINESS + RAG + APPLICATION
