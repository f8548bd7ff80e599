"""A screenshot of a `vsr compare` page, as the README shows it (needs playwright and Debian's chromium).

    .venv/bin/python samples/screenshot.py out/sample_compare.html docs/compare.png

The page is opened from disk with every network request refused, the slider set to 40 %, one spot zoomed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright


def main() -> None:
    page_path, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        raise SystemExit("needs chromium (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1200})
        page.route(
            "**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort()
        )
        page.goto(page_path.as_uri())
        page.locator("#split").fill("40")
        stage = page.locator("#stage").bounding_box()
        assert stage is not None
        page.mouse.click(stage["x"] + 0.36 * stage["width"], stage["y"] + 0.42 * stage["height"])
        page.screenshot(path=str(out), full_page=True)
        browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
