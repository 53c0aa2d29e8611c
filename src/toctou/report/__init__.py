"""Reports rendered from a saved result: JUnit XML and the self-contained HTML report."""

from toctou.report.html import render_attack_html, render_html, render_matrix_html, write_html
from toctou.report.junit import junit_xml, write_junit

__all__ = [
    "junit_xml",
    "render_attack_html",
    "render_html",
    "render_matrix_html",
    "write_html",
    "write_junit",
]
