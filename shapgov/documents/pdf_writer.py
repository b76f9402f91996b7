"""The model document as a PDF: the same blocks as the Word file, printed by Chromium.

The blocks are rendered to one self-contained HTML page (``reports/document.html.j2`` with
autoescaping, CSS inline, figures as data URIs, a Content-Security-Policy that forbids
scripts and requests) and printed with Chromium's own PDF printer (DevTools
``Page.printToPDF``, driven through ChromeDriver by selenium), A4, with a footer on every
page: the title, the manifest SHA-256 and "page N of M".

Chromium and ChromeDriver are the system's (Debian's ``chromium`` and
``chromium-driver``); ``SHAPGOV_CHROMIUM`` and ``SHAPGOV_CHROMEDRIVER`` name others. Nothing
is downloaded: selenium's driver manager is not used.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from functools import cache
from html import escape
from pathlib import Path
from typing import Any

from shapgov.documents.blocks import ModelDocument
from shapgov.errors import DocumentRendererError

#: Seconds Chromium may take to print one document.
PRINT_TIMEOUT = 120


@cache
def _template() -> tuple[Any, str]:
    from shapgov.sinks.templates import environment, read

    return environment().get_template("document.html.j2"), read("document.css")


def document_html(document: ModelDocument) -> str:
    """The document as one self-contained HTML page (what the PDF prints)."""
    template, css = _template()
    numbers = document.numbered()
    return template.render(
        css=css,
        document=document,
        fields=document.fields,
        number=lambda block: numbers[id(block)],
        kind_of=lambda block: type(block).__name__,
    )


def _footer(document: ModelDocument) -> str:
    title = escape(document.fields.get("title", ""))
    digest = escape(document.fields.get("manifest_sha256", ""))
    return (
        '<div style="font-size:7pt;width:100%;margin:0 14mm;color:#444;'
        'font-family:DejaVu Sans,Arial,sans-serif;display:flex;justify-content:space-between">'
        f'<span style="flex:1;overflow-wrap:anywhere">{title} · manifest SHA-256 {digest}</span>'
        '<span style="white-space:nowrap;padding-left:6mm">page <span class="pageNumber">'
        '</span> of <span class="totalPages"></span></span>'
        "</div>"
    )


def _binaries() -> tuple[str, str]:
    chromium = os.environ.get("SHAPGOV_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )
    driver = os.environ.get("SHAPGOV_CHROMEDRIVER") or shutil.which("chromedriver")
    if not chromium or not driver:
        raise DocumentRendererError(
            "printing the PDF needs Chromium and ChromeDriver: install them (Debian: apt-get "
            "install chromium chromium-driver) or name them with SHAPGOV_CHROMIUM and "
            "SHAPGOV_CHROMEDRIVER; the Word document needs neither"
        )
    return chromium, driver


def write_pdf(document: ModelDocument, out: str | Path) -> Path:
    """Print ``document`` to ``out`` (written whole, once printed).

    :raises DocumentRendererError: No Chromium or ChromeDriver, or printing failed.
    """
    chromium, driver_path = _binaries()
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="shapgov-pdf-") as tmp:
        page = Path(tmp) / "document.html"
        page.write_text(document_html(document), encoding="utf-8")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    f"--user-data-dir={tmp}/profile"):  # fmt: skip
            options.add_argument(arg)
        browser = None
        try:
            browser = webdriver.Chrome(
                service=Service(executable_path=driver_path), options=options
            )
            browser.set_page_load_timeout(PRINT_TIMEOUT)
            browser.get(page.as_uri())
            printed = browser.execute_cdp_cmd(
                "Page.printToPDF",
                {
                    "displayHeaderFooter": True,
                    "headerTemplate": "<span></span>",
                    "footerTemplate": _footer(document),
                    "printBackground": True,
                    "preferCSSPageSize": True,
                },
            )
        except WebDriverException as err:
            raise DocumentRendererError(
                f"Chromium ({chromium}) could not print the document: {err.msg or err}"
            ) from err
        finally:
            if browser is not None:
                browser.quit()
    out.write_bytes(base64.b64decode(printed["data"]))
    return out
