"""The CSV report: one row per finding, every finding, for spreadsheets and scripts.

Columns: ``channel,kind,sku,field,location,canonical,expected,actual,rule,detail,source,origin``
(``source`` and ``origin`` name the side and row of a ``data_quality`` finding). A channel
that could not be read gives one row of kind ``error`` with the message in ``detail``. Empty
cells mean "no value". Values are never shortened; quoting follows RFC 4180 (fields with
commas, quotes or line breaks are quoted), rows end in ``\\n``.
"""

from __future__ import annotations

import csv
import io

from omnisync.models import FINDING_ORIGIN, FINDING_TEXT, CheckResult

#: ``severity`` (expect.severity) came last, after the columns that were there before it.
COLUMNS = (*FINDING_TEXT, *FINDING_ORIGIN, "severity")


def render_csv(result: CheckResult) -> str:
    """All findings of ``result`` as CSV with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for channel in result.channels:
        if channel.error is not None:
            writer.writerow([channel.name, "error", *[""] * 7, channel.error, "", "", ""])
        for f in channel.findings:
            writer.writerow(
                [
                    channel.name,
                    f.kind.value,
                    f.sku,
                    f.field or "",
                    f.location or "",
                    f.canonical or "",
                    f.expected or "",
                    f.actual or "",
                    f.rule or "",
                    f.detail or "",
                    f.source or "",
                    f.origin or "",
                    f.severity.value,
                ]
            )
    return out.getvalue()
