// Open a notebook in a running JupyterLab with headless Chromium, run all its cells,
// and report what each code cell shows.
//
//   node book/browser/run_notebook.mjs LAB_URL TOKEN NOTEBOOK PROFILE_DIR SCREENSHOT
//
// JupyterLab must run with --LabApp.expose_app_in_browser=True: the cells are run
// by JupyterLab's own command (notebook:run-all-cells), as the Run menu would.
// Prints one JSON report on stdout; tests/test_jupyterlab_notebook.py judges it.
import { chromium } from "playwright-core";

const [lab, token, notebook, profileDir, screenshot] = process.argv.slice(2);
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const MINUTE = 60_000;

const context = await chromium.launchPersistentContext(profileDir, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: FLAGS,
  viewport: { width: 1280, height: 1000 },
});
const report = { pageErrors: [] };
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on("pageerror", (err) => report.pageErrors.push(String(err)));
  // A workspace of its own, reset: JupyterLab would otherwise reopen the notebooks of an earlier run.
  const workspace = notebook.replace(/[^A-Za-z0-9]/g, "-");
  await page.goto(`${lab}/lab/workspaces/${workspace}/tree/${notebook}?reset&token=${token}`, { waitUntil: "load" });
  // The notebook is open and its kernel is idle.
  await page.waitForFunction(() => {
    const w = window.jupyterapp?.shell?.currentWidget;
    return w?.content?.widgets?.length > 0 && w.sessionContext?.session?.kernel?.status === "idle";
  }, null, { timeout: 3 * MINUTE, polling: 250 });
  report.kernel = await page.evaluate(() => window.jupyterapp.shell.currentWidget.sessionContext.kernelDisplayName);
  await page.evaluate(() => window.jupyterapp.commands.execute("notebook:run-all-cells"));
  // Done when every code cell has an execution count and the kernel is idle again
  // (or a cell failed: run-all stops there).
  const runTimeout = Number(process.env.RUN_ALL_TIMEOUT_MS || 5 * MINUTE);
  try {
    await page.waitForFunction(() => {
      const w = window.jupyterapp.shell.currentWidget;
      const code = w.content.widgets.filter((c) => c.model.type === "code");
      const failed = code.some((c) => c.model.outputs.toJSON().some((o) => o.output_type === "error"));
      const done = code.every((c) => c.model.executionCount !== null);
      return (failed || done) && w.sessionContext.session.kernel.status === "idle";
    }, null, { timeout: runTimeout, polling: 500 });
  } catch (err) {
    // Report what ran and what did not, rather than only "timeout".
    report.timedOut = String(err).split("\n")[0];
    report.kernelStatus = await page.evaluate(() => window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status);
  }
  // Let widget views finish rendering their models.
  await page.waitForTimeout(1500);
  report.cells = await page.evaluate(() => {
    const w = window.jupyterapp.shell.currentWidget;
    return w.content.widgets.filter((c) => c.model.type === "code").map((c) => {
      const node = c.node;
      const size = (el) => { const r = el.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]; };
      const outputs = node.querySelector(".jp-OutputArea");
      return {
        source: c.model.sharedModel.getSource(),
        executionCount: c.model.executionCount,
        outputTypes: c.model.outputs.toJSON().map((o) => o.output_type),
        text: outputs ? outputs.innerText : "",
        modelText: c.model.outputs.toJSON().map((o) => {
          const t = o.text ?? o.data?.["text/plain"] ?? "";
          return Array.isArray(t) ? t.join("") : t;
        }).join(""),
        images: [...node.querySelectorAll(".jp-OutputArea-output img, .jp-OutputArea-output svg")].map(size),
        widgets: [...node.querySelectorAll(".jp-OutputArea-output .jupyter-widgets")].map((el) => ({
          classes: el.className, size: size(el) })),
      };
    });
  });
  // The screenshot shows the first widget (or diagram) the run rendered.
  await page.evaluate(() => {
    const el = document.querySelector(".jp-OutputArea-output .jupyter-widgets, .jp-OutputArea-output svg, .jp-OutputArea-output img");
    if (el) el.scrollIntoView({ block: "center" });
  });
  await page.screenshot({ path: screenshot });
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
