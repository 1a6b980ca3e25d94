// Shared machinery of the browser flows (flows.mjs, groups.mjs): one headless Chromium driven
// through the DevTools protocol (playwright-core), sessions watched for console errors and
// requests to other origins, and the audit every visited page gets: axe-core (serious and
// critical violations fail, in the light and the dark colour scheme), one h1, a main landmark,
// and a screenshot per colour scheme.
//
// Environment: AGORA_TEST_BASE_URL, AGORA_TEST_TOOLS (folder with node_modules),
// AGORA_TEST_SCREENSHOTS, AGORA_TEST_LABEL, AGORA_TEST_CHROMIUM.

import { createRequire } from "node:module";
import { readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
export const base = env("AGORA_TEST_BASE_URL");
const tools = env("AGORA_TEST_TOOLS");
export const shots = env("AGORA_TEST_SCREENSHOTS");
export const label = process.env.AGORA_TEST_LABEL || "run";
const require = createRequire(join(tools, "node_modules") + "/");
const { chromium } = require("playwright-core");
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
mkdirSync(shots, { recursive: true });

const origin = new URL(base).origin;
const failures = [];
export const fail = (msg) => {
  failures.push(msg);
  console.error("FAIL:", msg);
};
export const check = (cond, msg) => {
  if (!cond) fail(msg);
};

export const browser = await chromium.launch({
  executablePath: process.env.AGORA_TEST_CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
  ],
});

/** A fresh browser profile (context) in one language, watched for errors and foreign requests. */
export async function newSession(locale) {
  const context = await browser.newContext({ locale, viewport: { width: 1280, height: 900 } });
  // A missing element fails within seconds, not after Playwright's default 30 s.
  context.setDefaultTimeout(5000);
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    // Chromium reports a document answered with 4xx (a refused login is a 401) as a failed
    // resource. That status is intended; failed subresources (CSS, fonts, icons) still count.
    const documentStatus = m.text().startsWith("Failed to load resource") && m.location().url === page.url();
    if (!documentStatus) fail(`console error on ${page.url()}: ${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (e) => fail(`page error on ${page.url()}: ${e.message}`));
  page.on("request", (r) => {
    const url = r.url();
    if (url.startsWith("data:")) return;
    if (new URL(url).origin !== origin) fail(`request to another origin: ${url} (from ${page.url()})`);
  });
  return { context, page };
}

/** The axe rules whose outcome depends on the colour scheme. */
const colourRules = ["color-contrast", "link-in-text-block"];

/** axe-core and a screenshot per colour scheme, and the basic shell checks, for the current
 *  page. */
export async function audit(page, name) {
  const lang = await page.getAttribute("html", "lang");
  // Runtime evaluation through the DevTools protocol is not subject to the page's CSP.
  await page.evaluate(axeSource);
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    // All rules in light; in dark only those that depend on colours (faster).
    const options = scheme === "light" ? {} : { runOnly: { type: "rule", values: colourRules } };
    const result = await page.evaluate(async (options) =>
      // eslint-disable-next-line no-undef
      axe.run(document, { resultTypes: ["violations"], ...options }),
    options);
    for (const v of result.violations) {
      if (v.impact === "serious" || v.impact === "critical") {
        fail(`axe ${v.impact} on ${name}, ${scheme} (${page.url()}): ${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
      }
    }
    await page.screenshot({ path: join(shots, `${label}-${lang}-${scheme}-${name}.png`), fullPage: true });
  }
  await page.emulateMedia({ colorScheme: "light" });
  check((await page.locator("h1").count()) === 1, `${name}: exactly one h1`);
  check((await page.locator("main#main").count()) === 1, `${name}: a main landmark`);
}

/** Opens `path`, checks the status and audits the page. */
export async function goto(page, path, name) {
  const res = await page.goto(base + path);
  check(res && res.status() < 400, `${name}: GET ${path} answered ${res && res.status()}`);
  await audit(page, name);
}

/** Runs `action` (a click, a key press) and waits for the navigation it starts; returns the
 *  final response. */
export async function navigate(page, action) {
  const [res] = await Promise.all([page.waitForNavigation(), action()]);
  return res;
}

/** Logs in through the login form; checks that it worked. */
export async function login(page, username, password) {
  await page.goto(base + "/login");
  await page.fill("#username", username);
  await page.fill("#password", password);
  await navigate(page, () => page.click("form[action='/login'] button[type=submit]"));
  check(new URL(page.url()).pathname !== "/login", `${username} is logged in (${page.url()})`);
}

/** How many pixels the current page is wider than the window (0 or less: no scrolling). */
export async function overflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}

/** Closes the browser and exits: status 1 with the count of failures, or prints `passed`. */
export async function finish(passed) {
  await browser.close();
  if (failures.length) {
    console.error(`${failures.length} browser check(s) failed`);
    process.exit(1);
  }
  console.log(passed);
}
