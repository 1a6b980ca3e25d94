// Browser flow for project groups and discussion threads, through the real UI only: the admin
// creates a group and a sub-group and adds a member to the core team; that member starts a
// thread, a second member (who joined through the button) replies with the keyboard only, the
// first edits the opening post, and the admin (lead of the group) locks the thread. Started by
// tests/it/browser.rs against a real server on loopback; the accounts exist beforehand.
//
// Every page visited gets the audit in lib.mjs (axe-core, no console error, no request to
// another origin, screenshots light and dark).
//
// Environment, besides lib.mjs's: AGORA_TEST_ADMIN, AGORA_TEST_ADMIN_PASSWORD,
// AGORA_TEST_MEMBER_A, AGORA_TEST_MEMBER_A_PASSWORD, AGORA_TEST_MEMBER_B,
// AGORA_TEST_MEMBER_B_PASSWORD.

import { join } from "node:path";
import { base, env, label, shots, check, newSession, audit, goto, navigate, login, overflow, finish } from "./lib.mjs";

const admin = env("AGORA_TEST_ADMIN");
const adminPassword = env("AGORA_TEST_ADMIN_PASSWORD");
const memberA = env("AGORA_TEST_MEMBER_A");
const memberAPassword = env("AGORA_TEST_MEMBER_A_PASSWORD");
const memberB = env("AGORA_TEST_MEMBER_B");
const memberBPassword = env("AGORA_TEST_MEMBER_B_PASSWORD");

const path = (page) => new URL(page.url()).pathname;
const mainText = async (page) => (await page.locator("main").innerText()).replace(/\s+/g, " ");

/** Submits a form by clicking its button (found by accessible name inside main); checks the
 *  status of the page it leads to (any success, or exactly `status`). */
async function submit(page, buttonName, name, status) {
  const res = await navigate(page, () => page.locator("main").getByRole("button", { name: buttonName, exact: true }).click());
  const got = res && res.status();
  check(status ? got === status : got < 400, `${name}: the form answered ${got}`);
  return res;
}

/** Clicks a link (by accessible name, a string matched exactly or a RegExp, inside main), waits
 *  for the page and audits it. */
async function follow(page, linkName, name) {
  const res = await navigate(page, () => page.locator("main").getByRole("link", { name: linkName, exact: true }).click());
  check(res && res.status() < 400, `${name}: ${page.url()} answered ${res && res.status()}`);
  await audit(page, name);
}

/** The form fields by their label, as a person finds them. */
const field = (page, labelText) => page.locator("main").getByLabel(labelText, { exact: true });

// 1. The admin creates the group "programm" and its sub-group "verkehr" through the forms.
const a = await newSession("de-DE");
await login(a.page, admin, adminPassword);
await goto(a.page, "/groups", "groups-empty");
check((await mainText(a.page)).includes("Es gibt noch keine Gruppen."), "no groups yet");
await follow(a.page, "Neue Gruppe", "group-new");
check(path(a.page) === "/groups/new", `"Neue Gruppe" opens the form (${a.page.url()})`);

// A slug that breaks the rules is refused next to the field, and the other values stay.
await field(a.page, "Kurzname").fill("Programm!");
await field(a.page, "Titel").fill("Digitale Stadt");
await submit(a.page, "Gruppe anlegen", "group-new-invalid", 422);
check(path(a.page) === "/groups/new", "an invalid slug stays on the form");
check((await field(a.page, "Kurzname").getAttribute("aria-invalid")) === "true", "the slug field is marked invalid");
check(await a.page.isVisible("#slug-error"), "the slug error is shown");
check((await field(a.page, "Kurzname").getAttribute("aria-describedby"))?.includes("slug-error"), "the slug error is tied to the field");
check((await field(a.page, "Titel").inputValue()) === "Digitale Stadt", "the title is kept");
// The error summary above the form has the focus and links to the field.
check(await a.page.evaluate(() => document.activeElement?.hasAttribute("data-error-summary")), "the error summary has the focus");
const summaryLink = a.page.locator("[data-error-summary] a[href='#slug']");
check((await summaryLink.count()) === 1, "the summary links to the slug field");
await summaryLink.click();
check(await a.page.evaluate(() => document.activeElement?.id === "slug"), "the summary link moves the focus to the field");
await audit(a.page, "group-new-error");

await field(a.page, "Kurzname").fill("programm");
await field(a.page, "Beschreibung").fill("Das **Programm** für die digitale Stadt: alle Teilprojekte.");
await submit(a.page, "Gruppe anlegen", "group-create");
check(path(a.page) === "/g/programm", `the new group's page opens (${a.page.url()})`);
check((await a.page.locator("h1").innerText()) === "Digitale Stadt", "the group page shows the title");
check((await a.page.locator("main .prose strong").innerText()) === "Programm", "the description is Markdown");
await audit(a.page, "group-programm-new");

await a.page.goto(base + "/groups");
await follow(a.page, "Neue Gruppe", "group-new-second");
await field(a.page, "Kurzname").fill("verkehr");
await field(a.page, "Titel").fill("Verkehr und Mobilität");
await field(a.page, "Beschreibung").fill("Radwege, Busse und _sichere_ Schulwege.");
const parentOptions = await field(a.page, "Gehört zu").locator("option").allInnerTexts();
check(parentOptions.includes("Digitale Stadt"), `the parent list offers the group (${JSON.stringify(parentOptions)})`);
await field(a.page, "Gehört zu").selectOption({ label: "Digitale Stadt" });
await submit(a.page, "Gruppe anlegen", "subgroup-create");
check(path(a.page) === "/g/verkehr", `the sub-group's page opens (${a.page.url()})`);
check((await a.page.locator("main").getByRole("link", { name: "Digitale Stadt", exact: true }).count()) === 1, "the sub-group links to its parent");
check((await a.page.locator("main .prose em").innerText()) === "sichere", "the sub-group's description is Markdown");
await audit(a.page, "group-verkehr-new");

// The tree on /groups shows the sub-group under its parent: a list inside the parent's list
// item (so the hierarchy is in the markup), and indented.
await goto(a.page, "/groups", "groups-tree");
const main = a.page.locator("main");
// Not scoped to main: inside filter({ has }) a locator is matched within the filtered item.
const link = (name) => a.page.getByRole("link", { name, exact: true });
check((await main.getByRole("listitem").count()) === 2, "two groups in the tree");
const parentItem = main.getByRole("listitem").filter({ has: link("Digitale Stadt") });
check((await parentItem.getByRole("list").getByRole("listitem").filter({ has: link("Verkehr und Mobilität") }).count()) === 1, "the sub-group is listed inside its parent's item");
check((await main.getByRole("listitem").filter({ has: link("Verkehr und Mobilität") }).filter({ hasNot: link("Digitale Stadt") }).innerText()).match(/\b1 Mitglied/), "the sub-group's item shows its counts");
const parentBox = await main.getByRole("link", { name: "Digitale Stadt", exact: true }).boundingBox();
const childBox = await main.getByRole("link", { name: "Verkehr und Mobilität", exact: true }).boundingBox();
check(parentBox && childBox && childBox.x >= parentBox.x + 16, `the sub-group is indented (parent x ${parentBox?.x}, child x ${childBox?.x})`);
check(childBox && parentBox && childBox.y > parentBox.y, "the sub-group is below its parent");
// The parent's page lists the sub-group.
await goto(a.page, "/g/programm", "group-programm");
check((await a.page.locator("main").getByRole("region", { name: "Untergruppen" }).getByRole("link", { name: "Verkehr und Mobilität" }).count()) === 1, "the parent lists its sub-group");

// 2. The admin adds member A to the core team through the members form.
await goto(a.page, "/g/verkehr", "group-verkehr-lead");
await follow(a.page, /^1 Mitglied/, "group-members");
check(path(a.page) === "/g/verkehr/members", `the member count links to the members (${a.page.url()})`);
await field(a.page, "Benutzername").fill(memberA);
await field(a.page, "Rolle").selectOption({ label: "Kernteam" });
await submit(a.page, "Sofort hinzufügen", "member-add");
check(path(a.page) === "/g/verkehr/members", `back on the members page (${a.page.url()})`);
const rowA = a.page.locator("main").getByRole("row").filter({ hasText: `@${memberA}` });
check((await rowA.count()) === 1, "member A is listed");
check((await rowA.innerText()).includes("Kernteam"), `member A is in the core team (${await rowA.innerText()})`);
const rowAdmin = a.page.locator("main").getByRole("row").filter({ hasText: `@${admin}` });
check((await rowAdmin.innerText()).includes("Projektleitung"), "the creating admin leads the group");
await audit(a.page, "group-members-added");

// Member B joins the open group with the button.
const b = await newSession("de-DE");
await login(b.page, memberB, memberBPassword);
await goto(b.page, "/g/verkehr", "group-verkehr-outsider");
check((await b.page.locator("main").getByRole("link", { name: "Neue Diskussion" }).count()) === 1, "non-members may start threads in a public group that allows it");
await submit(b.page, "Beitreten", "group-join");
check(path(b.page) === "/g/verkehr", `back on the group page (${b.page.url()})`);
check((await mainText(b.page)).includes("Sie sind jetzt Mitglied."), "joining is confirmed");
check((await b.page.locator("main").getByRole("button", { name: "Verlassen" }).count()) === 1, "a member can leave");
check((await mainText(b.page)).includes("3 Mitglieder"), "three members now");
await audit(b.page, "group-joined");

// 3. Member A starts a thread.
const u = await newSession("de-DE");
await login(u.page, memberA, memberAPassword);
await goto(u.page, "/g/verkehr", "group-verkehr-member");
check((await mainText(u.page)).includes("Noch keine Diskussionen."), "no threads yet");
await follow(u.page, "Neue Diskussion", "thread-new");
check(path(u.page) === "/g/verkehr/threads/new", `"Neue Diskussion" opens the form (${u.page.url()})`);
await field(u.page, "Titel").fill("Radwege in der Innenstadt");
await field(u.page, "Text").fill("Wir planen **neue Radwege** rund um den Markt.\n\nWas fehlt noch? #Radverkehr");
await submit(u.page, "Diskussion beginnen", "thread-create");
const threadPath = path(u.page);
check(/^\/g\/verkehr\/t\/\d+$/.test(threadPath), `the thread opens (${u.page.url()})`);
check((await u.page.locator("h1").innerText()) === "Radwege in der Innenstadt", "the thread shows its title");
const opening = u.page.getByRole("article", { name: memberA });
check((await opening.count()) === 1, "the opening post is an article named by its author");
check((await opening.locator("strong").innerText()) === "neue Radwege", "the body is Markdown");
check((await opening.getByRole("link", { name: "#Radverkehr" }).getAttribute("href"))?.endsWith("/tags/radverkehr"), "the hashtag links to its tag page");
await audit(u.page, "thread");

// 4. Member B replies, with the keyboard only: Tab to the reply field, type, Tab, Enter.
await b.page.goto(base + threadPath);
await audit(b.page, "thread-before-reply");
let reached = false;
for (let i = 0; i < 60 && !reached; i++) {
  await b.page.keyboard.press("Tab");
  reached = await b.page.evaluate(() => document.activeElement?.id === "body");
}
check(reached, "the reply field is reachable with Tab");
check(await b.page.evaluate(() => document.activeElement?.labels?.[0]?.innerText === "Ihre Antwort"), "the focused field is labelled “Ihre Antwort”");
const focusVisible = await b.page.evaluate(() => {
  const style = getComputedStyle(document.activeElement);
  return style.outlineStyle !== "none" || style.boxShadow !== "none";
});
check(focusVisible, "keyboard focus on the reply field is visible");
await b.page.keyboard.type("Ein Radweg zur Schule fehlt noch. #Radverkehr");
await b.page.keyboard.press("Tab");
check(await b.page.evaluate(() => document.activeElement?.innerText?.trim() === "Antwort senden"), "Tab moves to “Antwort senden”");
const replied = await navigate(b.page, () => b.page.keyboard.press("Enter"));
check(replied && replied.status() < 400, `the reply is accepted (${replied && replied.status()})`);
check(path(b.page) === threadPath, `back on the thread (${b.page.url()})`);
const reply = b.page.getByRole("article", { name: memberB });
check((await reply.count()) === 1, "the reply appears");
check((await reply.innerText()).includes("Ein Radweg zur Schule fehlt noch."), "the reply shows its text");
check(/\b1 Antwort/.test(await b.page.locator("main .kern-subline").innerText()), "the thread counts one reply");
check((await b.page.getByRole("article", { name: memberA }).getByRole("link", { name: "Bearbeiten" }).count()) === 0, "B cannot edit A's post");
/** How far the reply is indented against the opening post, in pixels. */
const replyIndent = async (page) => {
  const post = await page.getByRole("article", { name: memberA }).boundingBox();
  const answer = await page.getByRole("article", { name: memberB }).boundingBox();
  return answer.x - post.x;
};
check((await replyIndent(b.page)) >= 12, `the reply is indented under the post (${await replyIndent(b.page)}px)`);
await audit(b.page, "thread-after-reply");

// 5. Member A edits the opening post: new text, and "(bearbeitet)" shows.
await u.page.goto(base + threadPath);
const mine = u.page.getByRole("article", { name: memberA });
check((await u.page.locator("main").getByRole("link", { name: "Bearbeiten" }).count()) === 1, "A may edit only their own post");
await navigate(u.page, () => mine.getByRole("link", { name: "Bearbeiten" }).click());
const editPath = path(u.page);
check(/^\/g\/verkehr\/t\/\d+\/p\/\d+\/edit$/.test(editPath), `the edit page opens (${u.page.url()})`);
await audit(u.page, "post-edit");
check((await field(u.page, "Titel").inputValue()) === "Radwege in der Innenstadt", "the edit form has the title");
check((await field(u.page, "Text").inputValue()).includes("**neue Radwege**"), "the edit form has the Markdown source");
await field(u.page, "Text").fill("Wir planen **sichere Radwege** rund um den Markt und zu den Schulen.\n\nWas fehlt noch? #Radverkehr");
await submit(u.page, "Speichern", "post-save");
check(path(u.page) === threadPath, `back on the thread after saving (${u.page.url()})`);
const edited = u.page.getByRole("article", { name: memberA });
check((await edited.locator("strong").innerText()) === "sichere Radwege", "the new text shows");
check(!(await edited.innerText()).includes("neue Radwege"), "the old text is gone");
check((await edited.locator("header").innerText()).includes("(bearbeitet)"), "the post is marked as edited");
check(!(await u.page.getByRole("article", { name: memberB }).locator("header").innerText()).includes("bearbeitet"), "the reply is not marked as edited");
await audit(u.page, "thread-edited");

// 6. The admin, lead of the group, locks the thread.
await a.page.goto(base + threadPath);
await audit(a.page, "thread-moderator");
await submit(a.page, "Schließen", "thread-lock");
check(path(a.page) === threadPath, `back on the thread after locking (${a.page.url()})`);
check((await a.page.locator("main .kern-subline").innerText()).includes("geschlossen"), "the thread shows as locked");
check((await a.page.locator("main").getByRole("button", { name: "Öffnen", exact: true }).count()) === 1, "the moderator can unlock it again");
await audit(a.page, "thread-locked-moderator");
// Member B sees a notice instead of the reply form.
await b.page.goto(base + threadPath);
check((await b.page.locator("main textarea").count()) === 0, "no reply form in a locked thread");
check((await mainText(b.page)).includes("Diese Diskussion ist geschlossen: keine neuen Antworten."), "a notice says the thread is locked");
check((await b.page.locator("main").getByRole("link", { name: /^Antworten/ }).count()) === 0, "no reply links in a locked thread");
await audit(b.page, "thread-locked");
// The group page marks the thread as locked.
await goto(b.page, "/g/verkehr", "group-verkehr-threads");
const listed = b.page.locator("main").getByRole("listitem").filter({ hasText: "Radwege in der Innenstadt" });
check((await listed.innerText()).includes("geschlossen"), `the thread list marks the thread as locked (${await listed.innerText()})`);
check(/\b1 Antwort/.test(await listed.innerText()), "the thread list counts the reply");

// 7. The other pages of the group, as the admin: settings, moderation log, tag page.
await goto(a.page, "/g/verkehr", "group-verkehr");
await follow(a.page, "Gruppeneinstellungen", "group-settings");
check(path(a.page) === "/g/verkehr/settings", `the settings open (${a.page.url()})`);
check((await field(a.page, "Gehört zu").locator("option:checked").innerText()) === "Digitale Stadt", "the settings show the parent");
// An avatar from the settings page: a real PNG is accepted and shown; a text file named .png is
// refused next to its field, which is marked invalid.
await a.page.locator("#avatar").setInputFiles(join(import.meta.dirname, "..", "..", "static", "avatar.png"));
await submit(a.page, "Profilbild hochladen", "avatar-upload");
check(path(a.page) === "/g/verkehr/settings", `back on the settings (${a.page.url()})`);
check((await mainText(a.page)).includes("Das Bild wurde gespeichert."), "the upload is confirmed");
check((await a.page.locator("main img.image-upload__preview--avatar").count()) === 1, "the settings show the avatar");
await audit(a.page, "group-settings-avatar");
await a.page.locator("#banner").setInputFiles({ name: "banner.png", mimeType: "image/png", buffer: Buffer.from("not really a picture") });
await submit(a.page, "Titelbild hochladen", "banner-upload-refused", 422);
check((await a.page.locator("#banner").getAttribute("aria-invalid")) === "true", "the banner field is marked invalid");
check((await a.page.locator("#banner-error").innerText()).includes("kein PNG-, JPEG-, GIF- oder WebP-Bild"), "the banner error says why");
await audit(a.page, "group-settings-image-error");
await a.page.goto(base + "/g/verkehr");
check((await a.page.locator("main img.group-avatar").count()) === 1, "the group page shows the avatar");
await a.page.goto(base + "/g/verkehr");
await follow(a.page, "Moderationsprotokoll", "moderation-log");
check(path(a.page) === "/g/verkehr/log", `the log opens (${a.page.url()})`);
const logRow = a.page.locator("main").getByRole("row").filter({ hasText: `@${admin}` });
check((await logRow.count()) === 1 && (await logRow.innerText()).includes("geschlossen"), "the log records the lock");
await goto(a.page, "/tags/radverkehr", "tag");
check((await a.page.locator("h1").innerText()) === "#radverkehr", "the tag page is titled by the tag");
check((await a.page.locator("main").getByRole("link", { name: "Radwege in der Innenstadt" }).count()) === 2, "the tag page lists the post and the reply");

// 8. In English, anonymous: the same pages read and pass the checks.
const anon = await newSession("en-GB");
for (const [p, name] of [["/groups", "groups-tree"], ["/g/programm", "group-programm"], ["/g/verkehr", "group-verkehr"], ["/g/verkehr/members", "group-members"], [threadPath, "thread-locked"], ["/tags/radverkehr", "tag"]]) {
  await goto(anon.page, p, name);
}
check((await anon.page.locator("html").getAttribute("lang")) === "en", "the anonymous session reads English");

// 9. Small screens: no horizontal scrolling at 320 px, for a member and for the lead (who sees
// the moderation and management controls).
async function narrow(page, who, paths) {
  await page.setViewportSize({ width: 320, height: 800 });
  for (const [p, name] of paths) {
    await page.goto(base + p);
    const over = await overflow(page);
    check(over <= 0, `${p} fits 320 px for the ${who} (overflow ${over}px)`);
    await page.screenshot({ path: join(shots, `${label}-de-light-narrow-${who}-${name}.png`), fullPage: true });
  }
}
await narrow(u.page, "member", [[threadPath, "thread"], ["/g/verkehr", "group"], ["/groups", "groups"], ["/g/verkehr/members", "members"], ["/g/verkehr/threads/new", "thread-new"], [editPath, "post-edit"]]);
await u.page.goto(base + threadPath);
check((await replyIndent(u.page)) >= 8, `at 320 px the reply is still indented (${await replyIndent(u.page)}px)`);
await narrow(a.page, "lead", [[threadPath, "thread"], ["/groups/new", "group-new"], ["/g/verkehr/members", "members"], ["/g/verkehr/settings", "settings"], ["/g/verkehr/log", "log"], ["/tags/radverkehr", "tag"]]);

await finish("group flows passed");
