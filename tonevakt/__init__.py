"""Tonevakt: how is Helseplattformen talked about? Media tone against patient feedback, week by week."""

__version__ = "0.1.0"
