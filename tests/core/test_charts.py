"""The server-drawn SVG charts escape every dynamic part."""

from apps.core.charts import bar_chart, grouped_bar_chart

XSS = "<script>alert(1)</script>"


def test_bar_chart_escapes_labels_units_and_title():
    svg = bar_chart([(XSS, 2.5)], unit=XSS, title=XSS)
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_grouped_bar_chart_escapes_labels_series_units_and_title():
    svg = grouped_bar_chart([(XSS, 1.0, 2.0)], series=(XSS, XSS), unit=XSS, title=XSS)
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
