"""Insight: NPS analytics, follow-up metrics, CSV export, the dashboard and ops gauges."""
