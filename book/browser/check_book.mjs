// Open every page of the built book in headless Chromium and report what a reader would see.
//
//   node book/browser/check_book.mjs BASE_URL SCREENSHOT_DIR PROFILE_DIR PAGE...
//
// PAGE is a path under BASE_URL ("/", "/welcome/", ...). Prints one JSON report on
// stdout; tests/test_book_browser.py decides what passes. Per page: console errors,
// page errors, failed requests, every <img> and <svg> with its rendered size, every
// link, and each solution dropdown before and after a click on its summary.
// Screenshots: the landing page, the first lesson with its first solution open, and
// the glossary. Chromium is Debian's (/usr/bin/chromium): no browser is downloaded.
import { chromium } from "playwright-core";
import path from "node:path";

const [base, shotDir, profileDir, ...pages] = process.argv.slice(2);
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

const context = await chromium.launchPersistentContext(profileDir, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: FLAGS,
  viewport: { width: 1280, height: 900 },
});
const report = { pages: {} };
try {
  const page = context.pages()[0] || (await context.newPage());
  let current = null;
  page.on("console", (msg) => {
    if (current && msg.type() === "error") {
      current.console.push(`${msg.type()}: ${msg.text()}`);
    }
  });
  page.on("pageerror", (err) => current && current.pageErrors.push(String(err)));
  page.on("requestfailed", (req) => current && current.failedRequests.push(`${req.url()} ${req.failure()?.errorText}`));
  page.on("response", (resp) => {
    if (current && resp.status() >= 400) current.failedRequests.push(`${resp.url()} HTTP ${resp.status()}`);
  });

  for (const p of pages) {
    current = { console: [], pageErrors: [], failedRequests: [] };
    report.pages[p] = current;
    const resp = await page.goto(base + p, { waitUntil: "load" });
    current.status = resp ? resp.status() : 0;
    current.title = await page.title();
    current.images = await page.$$eval("img", (imgs) => imgs.map((img) => {
      const r = img.getBoundingClientRect();
      return { src: img.getAttribute("src").slice(0, 80), complete: img.complete,
               naturalWidth: img.naturalWidth, width: r.width, height: r.height };
    }));
    current.svgs = await page.$$eval("svg", (svgs) => svgs.map((s) => {
      const r = s.getBoundingClientRect();
      return { width: r.width, height: r.height };
    }));
    current.links = await page.$$eval("a[href]", (as) => as.map((a) => a.href));
    current.nav = await page.$$eval(".sidebar a", (as) => as.map((a) => [a.textContent, a.getAttribute("href")]));
    current.launch = await page.$$eval(".launch a.launch-binder, form.launch-hub", (els) =>
      els.map((e) => e.getAttribute("href") || e.getAttribute("data-query")));
    const dropdowns = await page.$$("details.dropdown");
    current.dropdowns = [];
    for (const d of dropdowns) {
      const before = await d.evaluate((el) => el.open);
      await (await d.$("summary")).click();
      const after = await d.evaluate((el) => el.open);
      const body = await d.evaluate((el) => {
        const code = el.querySelector("pre");
        const r = code ? code.getBoundingClientRect() : { width: 0, height: 0 };
        return { text: code ? code.textContent : "", width: r.width, height: r.height };
      });
      current.dropdowns.push({ openBefore: before, openAfter: after, ...body });
    }
  }

  // Screenshots: fresh loads, so the pages look as a reader first sees them.
  report.screenshots = [];
  const shots = [["/", "book-landing.png", false], [pages.find((p) => p.includes("welcome")) || pages[1], "book-lesson-solution-open.png", true],
                 [pages.find((p) => p.includes("glossary")) || pages[pages.length - 1], "book-glossary.png", false]];
  current = null;
  for (const [p, name, openFirst] of shots) {
    await page.goto(base + p, { waitUntil: "load" });
    if (openFirst) {
      const first = await page.$("details.dropdown summary");
      if (first) { await first.click(); await first.scrollIntoViewIfNeeded(); }
    }
    const file = path.join(shotDir, name);
    await page.screenshot({ path: file, fullPage: !openFirst });
    report.screenshots.push(file);
  }
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
