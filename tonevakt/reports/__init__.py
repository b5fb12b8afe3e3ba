"""The weekly report (HTML, PDF, CSV, JSON, e-mail), the dashboard and the trend table. Reads through storage."""

from tonevakt.reports.weekly import ReportPaths, write_report, write_weekly

__all__ = ["ReportPaths", "write_report", "write_weekly"]
