"""The JUnit XML report, for CI systems that show test results (Jenkins, GitLab, GitHub actions).

Each channel is a ``<testsuite name="omnisync.<channel>">``; each check on it is a
``<testcase>``: ``read`` (an ``<error>`` when the channel could not be read), ``missing``,
``extra``, ``duplicate``, ``data_quality``, ``identity`` and one per compared field (``price``, ``stock``, ...). A failing check
has a ``<failure type="mismatch">`` whose text lists every finding of severity ``fail``, one per
line; ``warn`` and ``info`` findings go to the case's ``<system-out>``. A channel that
could not be read has only its ``read`` case: nothing else about it is known.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from omnisync.models import ChannelReport, CheckResult, Finding, Kind, Severity
from omnisync.report._common import duration_seconds, finding_line, plural

#: Characters XML 1.0 cannot carry at all, even escaped; a stray vertical tab in an ERP
#: description must not make the whole report unparseable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

_RECORD_CHECKS: dict[Kind, str] = {
    Kind.MISSING: "missing from the channel",
    Kind.EXTRA: "on the channel but not in the canonical catalogue",
    Kind.DUPLICATE: "listed more than once",
    Kind.DATA_QUALITY: "with a value that cannot be used (blank in canonical, no SKU, mangled)",
    Kind.IDENTITY: "whose SKU does not line up with its product (a GTIN on several SKUs)",
}


def _xml(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _case(suite: ET.Element, channel: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=f"omnisync.{_xml(channel)}", name=_xml(name))


def _fail(case: ET.Element, message: str, findings: list[Finding]) -> bool:
    """A ``<failure>`` for the ``fail`` findings; ``warn`` and ``info`` ones (expect.severity)
    are listed in the case's ``<system-out>``, led by their severity, and do not fail it.
    Whether the case failed."""
    failing = [f for f in findings if f.severity is Severity.FAIL]
    others = [f for f in findings if f.severity is not Severity.FAIL]
    if failing:
        failure = ET.SubElement(case, "failure", message=_xml(message), type="mismatch")
        failure.text = _xml("\n".join(finding_line(f) for f in failing))
    if others:
        out = ET.SubElement(case, "system-out")
        out.text = _xml("\n".join(f"{f.severity.value}: {finding_line(f)}" for f in others))
    return bool(failing)


def _suite(parent: ET.Element, channel: ChannelReport, result: CheckResult) -> tuple[int, int, int]:
    suite = ET.SubElement(parent, "testsuite", name=f"omnisync.{_xml(channel.name)}")
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("connector", channel.connector),
        ("run_id", result.run_id),
        ("config", result.config_path),
    ):
        if value is not None:
            ET.SubElement(properties, "property", name=key, value=_xml(value))

    tests = failures = errors = 0
    read = _case(suite, channel.name, "read")
    tests += 1
    if channel.error is not None:
        first_line = channel.error.strip().splitlines()[0] if channel.error.strip() else "error"
        error = ET.SubElement(read, "error", message=_xml(first_line), type="read")
        error.text = _xml(channel.error)
        errors += 1
    else:
        for kind, what in _RECORD_CHECKS.items():
            case = _case(suite, channel.name, kind.value)
            tests += 1
            found = [f for f in channel.findings if f.kind is kind]
            if found:
                if kind is Kind.DATA_QUALITY:  # a row without a SKU counts as a row
                    counted = plural(len(found), "row")
                else:
                    counted = plural(len({f.sku for f in found}), "SKU")
                failures += _fail(case, f"{counted} {what}", found)
        changed = [f for f in channel.findings if f.kind is Kind.CHANGED]
        # Fields that changed without being listed as compared still get a case: no finding
        # may vanish from the report.
        names = list(channel.fields)
        names += [n for n in dict.fromkeys(f.field or "record" for f in changed) if n not in names]
        for name in names:
            case = _case(suite, channel.name, name)
            tests += 1
            found = [f for f in changed if (f.field or "record") == name]
            if found:
                skus = len({f.sku for f in found})
                verb = "differs" if skus == 1 else "differ"
                failures += _fail(case, f"{plural(skus, 'SKU')} {verb} in {name}", found)
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", "0")
    return tests, failures, errors


def render_junit(result: CheckResult) -> str:
    """``result`` as JUnit XML with an XML declaration, ending in a newline."""
    root = ET.Element("testsuites", name="omnisync check")
    totals = [0, 0, 0]
    for channel in result.channels:
        counts = _suite(root, channel, result)
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
    root.set("tests", str(totals[0]))
    root.set("failures", str(totals[1]))
    root.set("errors", str(totals[2]))
    root.set("time", f"{duration_seconds(result) or 0.0:.3f}")
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
