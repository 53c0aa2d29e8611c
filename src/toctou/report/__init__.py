"""Reports rendered from a :class:`toctou.engine.RaceResult`."""

from toctou.report.junit import junit_xml, write_junit

__all__ = ["junit_xml", "write_junit"]
