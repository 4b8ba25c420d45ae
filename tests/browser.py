"""Open the HTML pages our tools write in headless Chromium and report what a reader would see broken.

`check_pages(start, screenshot_dir)` loads a page and every local .html page it links to (each once),
and for each lists the pictures that did not load, the browser's SEVERE console/network errors and the
local links whose target is missing; it saves a full-page PNG screenshot of each. `browser_problem()`
says why no browser can be driven here (None when one can), so tests can skip or fail clearly.
"""
import base64
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVER_NAMES = ("chromedriver",)
WINDOW_SIZE = (1280, 2000)
LOAD_TIMEOUT_S = 20
MAX_SCREENSHOT_HEIGHT = 16000  # Chromium refuses captures much taller than this
HEADLESS_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-default-apps", "--disable-sync", "--no-first-run",
                  f"--window-size={WINDOW_SIZE[0]},{WINDOW_SIZE[1]}")

# Runs in the page: every picture with whether it loaded, every link target (resolved by the browser),
# and the text that comes before the first picture.
PAGE_FACTS_JS = """
const images = Array.from(document.images).map(i => ({src: i.currentSrc || i.src,
    attribute: i.getAttribute('src'), loaded: i.complete && i.naturalWidth > 0}));
const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.href);
const before = document.createRange();
before.selectNodeContents(document.body);
if (document.images.length) before.setEndBefore(document.images[0]);
return {title: document.title, images: images, links: links, textBeforeFirstImage: before.toString()};
"""
PAGE_READY_JS = ("return document.readyState === 'complete' && "
                 "Array.from(document.images).every(i => i.complete);")


def find_executable(names):
    """The first of `names` found on PATH, or None. names: program names to try in order."""
    return next((path for path in map(shutil.which, names) if path), None)


def browser_problem():
    """Why a headless Chromium cannot be driven here (one line), or None when it can."""
    try:
        import selenium  # noqa: F401  (only its presence matters here)
    except ImportError:
        return "selenium is not installed; pip install -r requirements-test.txt"
    if find_executable(BROWSER_NAMES) is None:
        return f"no Chromium on PATH (tried {', '.join(BROWSER_NAMES)}); install the Debian package chromium"
    if find_executable(DRIVER_NAMES) is None:
        return "no chromedriver on PATH; install the Debian package chromium-driver"
    return None


def start_driver(profile_dir):
    """Start headless Chromium with its console log recorded. profile_dir: a fresh, empty folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = find_executable(BROWSER_NAMES)
    for flag in (*HEADLESS_FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(find_executable(DRIVER_NAMES)), options=options)


@dataclass
class PageReport:
    """What one page showed. path: the page file; screenshot: its PNG; the lists hold what went wrong."""
    path: Path
    screenshot: Path
    title: str = ""
    text_before_first_image: str = ""
    loaded_images: list = field(default_factory=list)
    broken_images: list = field(default_factory=list)
    console_errors: list = field(default_factory=list)
    dead_links: list = field(default_factory=list)

    def problems(self):
        """One readable line per fault found on this page."""
        return ([f"{self.path}: broken image {src}" for src in self.broken_images]
                + [f"{self.path}: console error {message}" for message in self.console_errors]
                + [f"{self.path}: dead link {target}" for target in self.dead_links])


@dataclass
class SiteReport:
    """The reports of the start page and every local page reached from it, in visiting order."""
    pages: list

    @property
    def ok(self):
        """Whether no page had a broken image, a console error or a dead link."""
        return not self.problems()

    def problems(self):
        """Every fault of every page, one line each."""
        return [line for page in self.pages for line in page.problems()]

    @property
    def loaded_images(self):
        """The addresses of the pictures that loaded, over all pages."""
        return [src for page in self.pages for src in page.loaded_images]

    def __str__(self):
        visited = ", ".join(page.path.name for page in self.pages)
        return "\n".join([f"{len(self.pages)} page(s) checked: {visited}", *self.problems()])


def local_path(url):
    """The file a file:// address names (query and fragment dropped), or None for other schemes."""
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def save_full_screenshot(driver, path):
    """Capture the whole page, not just the window. driver: a Chromium webdriver; path: the PNG to write."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], MAX_SCREENSHOT_HEIGHT),
            "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot",
                                  {"format": "png", "captureBeyondViewport": True, "clip": clip})
    path.write_bytes(base64.b64decode(shot["data"]))


def inspect_page(driver, page, screenshot):
    """Load `page` and report on it; return (PageReport, local .html files it links to).

    driver: a running Chromium webdriver; page: absolute path of the .html file; screenshot: PNG to write.
    """
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(page.as_uri())
    WebDriverWait(driver, LOAD_TIMEOUT_S).until(lambda d: d.execute_script(PAGE_READY_JS))
    facts = driver.execute_script(PAGE_FACTS_JS)
    save_full_screenshot(driver, screenshot)
    targets = [path for path in map(local_path, facts["links"]) if path is not None]
    report = PageReport(
        path=page, screenshot=screenshot, title=facts["title"],
        text_before_first_image=facts["textBeforeFirstImage"],
        loaded_images=[image["src"] for image in facts["images"] if image["loaded"]],
        broken_images=[image["attribute"] for image in facts["images"] if not image["loaded"]],
        console_errors=[entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"],
        dead_links=[str(target) for target in targets if not target.exists()])
    linked_pages = [target for target in targets if target.suffix.lower() in (".html", ".htm") and target.is_file()]
    return report, linked_pages


def check_pages(start_html_path, screenshot_dir):
    """Check a page and every local page it leads to, each once; return a SiteReport.

    start_html_path: the first page to open (an .html file).
    screenshot_dir: folder for the screenshots, `NN_<page name>.png` in visiting order (created).
    """
    start = Path(start_html_path).resolve()
    if not start.is_file():
        raise FileNotFoundError(f"no page at {start}")
    screenshot_dir = Path(screenshot_dir)
    screenshot_dir.mkdir(parents=True, exist_ok=True)
    reports, seen, queue = [], {start}, deque([start])
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        driver = start_driver(profile)
        try:
            while queue:
                page = queue.popleft()
                screenshot = screenshot_dir / f"{len(reports):02d}_{page.stem}.png"
                report, linked_pages = inspect_page(driver, page, screenshot)
                reports.append(report)
                for target in map(Path.resolve, linked_pages):
                    if target not in seen:
                        seen.add(target)
                        queue.append(target)
        finally:
            driver.quit()
    return SiteReport(reports)
