// Browser flows for the web UI shell, driven through the DevTools protocol (playwright-core) in
// Debian's Chromium. Started by tests/it/browser.rs against a real server on loopback.
//
// Every page a flow visits is checked: axe-core finds no serious or critical violation, the
// console shows no error, and no request goes to another origin. A screenshot of each page, in
// German and English, light and dark, goes to $AGORA_TEST_SCREENSHOTS (machinery in lib.mjs).
//
// Environment: AGORA_TEST_BASE_URL, AGORA_TEST_ADMIN, AGORA_TEST_ADMIN_PASSWORD,
// AGORA_TEST_TOOLS (folder with node_modules), AGORA_TEST_SCREENSHOTS, AGORA_TEST_LABEL.

import { join } from "node:path";
import { base, env, label, shots, check, newSession, audit, goto, finish } from "./lib.mjs";

/** Visible text lines of the main content and the chrome, for comparing languages. */
async function textLines(page) {
  const text = await page.evaluate(() => document.body.innerText);
  return new Set(text.split("\n").map((s) => s.trim()).filter((s) => s.length > 2));
}

const admin = env("AGORA_TEST_ADMIN");
const adminPassword = env("AGORA_TEST_ADMIN_PASSWORD");

// 1. The admin logs in (German, the default) and sees the admin area.
const a = await newSession("de-DE");
await goto(a.page, "/", "home-anonymous");
await goto(a.page, "/login", "login");
await a.page.fill("#username", admin);
await a.page.fill("#password", adminPassword);
await Promise.all([a.page.waitForNavigation(), a.page.click("form[action='/login'] button[type=submit]")]);
check(new URL(a.page.url()).pathname === "/", "admin lands on the home page");
check((await a.page.textContent("main")).includes("Willkommen"), "admin sees the German start area");
await audit(a.page, "home-admin");

// 2. The admin creates a user and reads the one-time password.
await goto(a.page, "/admin", "admin-users");
await goto(a.page, "/admin/users/new", "admin-new-user");
await a.page.fill("#username", "browser_user");
await a.page.fill("#display_name", "Bea Browser");
await a.page.fill("#email", "bea@example.org");
await Promise.all([a.page.waitForNavigation(), a.page.click("form[action='/admin/users/new'] button[type=submit]")]);
const otp = (await a.page.textContent("#one-time-password"))?.trim();
check(otp && otp.length === 16, `one-time password shown (${otp})`);
await audit(a.page, "admin-user-created");
await goto(a.page, "/admin/settings", "admin-settings");
// The admin pages in English too (footer language switch), for the screenshots and axe.
await a.page.selectOption("#footer-lang", "en");
await Promise.all([a.page.waitForNavigation(), a.page.click("form[action='/language'] button[type=submit]")]);
check((await a.page.getAttribute("html", "lang")) === "en", "footer switch changes the language");
for (const [path, name] of [["/admin", "admin-users"], ["/admin/users/new", "admin-new-user"], ["/admin/settings", "admin-settings"]]) {
  await goto(a.page, path, name);
}
const anonEn = await newSession("en-GB");
for (const [path, name] of [["/", "home-anonymous"], ["/login", "login"], ["/register", "register"]]) {
  await goto(anonEn.page, path, name);
}

// 3. A wrong password shows the error next to the field.
const u = await newSession("de-DE");
await goto(u.page, "/login", "login-user");
await u.page.fill("#username", "browser_user");
await u.page.fill("#password", "not the password");
await Promise.all([u.page.waitForNavigation(), u.page.press("#password", "Enter")]);
check(await u.page.isVisible("#password-error"), "error message visible");
check((await u.page.getAttribute("#password", "aria-describedby"))?.includes("password-error"), "error tied to the field");
check((await u.page.getAttribute("#password", "aria-invalid")) === "true", "field marked invalid");
check((await u.page.textContent("#password-error"))?.includes("Benutzername oder Passwort ist falsch"), "error text in German");
await audit(u.page, "login-error");

// 4. The user logs in with the one-time password and is forced to choose a new one.
await u.page.fill("#password", otp);
await Promise.all([u.page.waitForNavigation(), u.page.press("#password", "Enter")]);
check(new URL(u.page.url()).pathname === "/settings/password", `forced to the password page (${u.page.url()})`);
await audit(u.page, "password-forced");
await u.page.fill("#current_password", otp);
await u.page.fill("#new_password", "bea's very own password");
await Promise.all([u.page.waitForNavigation(), u.page.click("form[action='/settings/password'] button[type=submit]")]);
check(new URL(u.page.url()).pathname === "/settings/password", "back on the password page");
check((await u.page.textContent("main")).includes("Ihr Passwort wurde geändert"), "password change confirmed");

// 5. The user switches to English in the settings; every string on three pages changes.
await goto(u.page, "/u/browser_user", "profile");
const pages = [["/", "home-user"], ["/settings", "settings"], ["/about", "about"]];
const german = {};
for (const [path, name] of pages) {
  await goto(u.page, path, name);
  german[path] = await textLines(u.page);
}
await u.page.goto(base + "/settings");
await u.page.selectOption("#language", "en");
await Promise.all([u.page.waitForNavigation(), u.page.click("form[action='/settings/profile'] button[type=submit]")]);
check((await u.page.getAttribute("html", "lang")) === "en", "page is English after the change");
// Values that are the same in both languages: names, addresses, numbers, the language names.
const same = new Set(["Agora", "Bea Browser", "browser_user", "bea@example.org", "Deutsch", "English", "Blog", "Fediverse", "Administrator", "Software", "Status"]);
for (const [path, name] of pages) {
  await goto(u.page, path, name);
  const english = await textLines(u.page);
  const unchanged = [...english].filter((l) => german[path].has(l) && !same.has(l) && !/^[\d\s.,:()–-]+$/.test(l) && !l.startsWith("Agora 0."));
  check(unchanged.length === 0, `${path}: strings not translated: ${JSON.stringify(unchanged)}`);
}

// 6. The user creates an API token (shown once) and revokes it.
await goto(u.page, "/settings", "settings-en");
await u.page.fill("#name", "browser token");
await Promise.all([u.page.waitForNavigation(), u.page.click("form[action='/settings/tokens'] button[type=submit]")]);
const token = (await u.page.textContent("#new-token"))?.trim();
check(token && token.startsWith("agora_"), "token shown once");
await audit(u.page, "token-created");
const me = await fetch(base + "/api/v1/me", { headers: { authorization: `Bearer ${token}` } });
check(me.status === 200, `the new token works (${me.status})`);
await goto(u.page, "/settings", "settings-token-listed");
check(!(await u.page.textContent("main")).includes(token), "the token is not shown again");
// With JavaScript the revoke asks for confirmation in a KERN dialog.
await u.page.click("form[action^='/settings/tokens/'] button[type=submit]");
await u.page.waitForSelector("#confirm-dialog[open]");
check((await u.page.textContent("#confirm-dialog-text")).includes("browser token"), "the dialog names the token");
await audit(u.page, "confirm-dialog");
await Promise.all([u.page.waitForNavigation(), u.page.click("#confirm-dialog button[value=ok]")]);
const revoked = await fetch(base + "/api/v1/me", { headers: { authorization: `Bearer ${token}` } });
check(revoked.status === 401, `the revoked token fails (${revoked.status})`);
check((await u.page.textContent("main")).includes("You have no API tokens yet"), "token list is empty");

// 7. Keyboard only: reach the login form with Tab, type, submit with Enter.
const k = await newSession("en-GB");
await k.page.goto(base + "/login");
let reached = false;
for (let i = 0; i < 25 && !reached; i++) {
  await k.page.keyboard.press("Tab");
  reached = await k.page.evaluate(() => document.activeElement?.id === "username");
}
check(reached, "the user name field is reachable with Tab");
const focusVisible = await k.page.evaluate(() => {
  const el = document.activeElement;
  const style = el && getComputedStyle(el);
  return !!style && (style.outlineStyle !== "none" || style.boxShadow !== "none");
});
check(focusVisible, "keyboard focus is visible");
await k.page.keyboard.type("browser_user");
await k.page.keyboard.press("Tab");
check(await k.page.evaluate(() => document.activeElement?.id === "password"), "Tab moves to the password");
await k.page.keyboard.type("bea's very own password");
await Promise.all([k.page.waitForNavigation(), k.page.keyboard.press("Enter")]);
check(new URL(k.page.url()).pathname === "/", `logged in with the keyboard (${k.page.url()})`);
check((await k.page.textContent("main")).includes("Welcome, Bea Browser"), "the user's own language (English) applies");
await audit(k.page, "home-keyboard");

// 8. Error pages in the shell's design.
await goto(k.page, "/about", "about-en");
const missing = await k.page.goto(base + "/does/not/exist");
check(missing.status() === 404, "404 status");
await audit(k.page, "error-404");

// 9. Small screens: no horizontal scrolling at 320 px.
await k.page.setViewportSize({ width: 320, height: 800 });
for (const path of ["/", "/settings", "/about"]) {
  await k.page.goto(base + path);
  const overflow = await k.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `${path} fits 320 px (overflow ${overflow}px)`);
  await k.page.screenshot({ path: join(shots, `${label}-en-light-narrow${path === "/" ? "-home" : path.replaceAll("/", "-")}.png`), fullPage: true });
}

// The admin pages too (tables that scroll sideways must not widen the page).
await a.page.setViewportSize({ width: 320, height: 800 });
for (const path of ["/admin", "/admin/settings"]) {
  await a.page.goto(base + path);
  const overflow = await a.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `${path} fits 320 px (overflow ${overflow}px)`);
  await a.page.screenshot({ path: join(shots, `${label}-en-light-narrow${path.replaceAll("/", "-")}.png`), fullPage: true });
}

await finish("browser flows passed");
