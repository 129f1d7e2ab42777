// The recruiters' web page in a real browser: Debian's Chromium, headless,
// driven by Playwright (playwright-core, no browser download), against the
// real jobmail binary that tests/e2e/http/web.rs started and filled.
//
//   node tests/browser/web.mjs        (with JOBMAIL_WEB set to the scenario as JSON)
//
// Every step says what it checks; the first failure ends the run with its
// message and exit code 1. Screenshots of each page go to `shots`.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const s = JSON.parse(process.env.JOBMAIL_WEB);
mkdirSync(s.shots, { recursive: true });

function check(ok, what) {
  if (!ok) throw new Error(`not so: ${what}`);
  console.log(`ok: ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});

/** A new browser context (its own cookies), failing on any script dialog
 * (a hostile name or subject that ran) and on any CSP violation report. */
async function context(options = {}) {
  const ctx = await browser.newContext({ locale: "de-DE", ...options });
  ctx.on("page", (page) => watch(page));
  return ctx;
}

const dialogs = [];
function watch(page) {
  page.on("dialog", async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/.test(m.text())) {
      dialogs.push(`CSP: ${m.text()}`);
    }
  });
}

async function signIn(ctx, token) {
  const page = await ctx.newPage();
  await page.goto(`${s.base}/inbox`);
  check(page.url().endsWith("/sign-in"), "an unsigned visitor is sent to the sign-in page");
  await page.getByLabel(/Zugangstoken|access token/).fill(token);
  await page.keyboard.press("Enter");
  await page.waitForURL(`${s.base}/inbox`);
  return page;
}

try {
  // ---- Sign-in: a wrong token, then Anna's.
  const anna = await context();
  {
    const page = await anna.newPage();
    await page.goto(`${s.base}/sign-in`);
    await page.screenshot({ path: `${s.shots}/sign-in.png`, fullPage: true });
    await page.getByLabel(/Zugangstoken/).fill("not-a-token-not-a-token-not-a-token");
    await page.getByRole("button", { name: "Anmelden" }).click();
    check((await page.getByRole("alert").textContent()).includes("unbekannt"), "a wrong token is refused, in German");
    await page.close();
  }
  const page = await signIn(anna, s.anna_token);
  const cookies = await anna.cookies();
  const session = cookies.find((c) => c.name === "jobmail_session");
  check(session && session.httpOnly && session.sameSite === "Strict", "the session cookie is HttpOnly and SameSite=Strict");

  // ---- Inbox: the hostile name and subject are text, nothing ran.
  await page.screenshot({ path: `${s.shots}/inbox.png`, fullPage: true });
  const subject = page.locator(`#message-${s.erika_message} td`).nth(2);
  check((await subject.textContent()).includes("<script>"), "a subject with <script> is shown as text");
  check((await page.locator("script").count()) === 0, "the page has no script element at all");
  check(dialogs.length === 0, `no hostile string ran: ${dialogs.join("; ")}`);

  // ---- Search and filters: by the sender's name, then by a document's category.
  await page.getByLabel("Betreff, Absender oder Kandidat:in").fill("kim");
  await page.getByRole("button", { name: "Filtern" }).click();
  await page.waitForURL(/search=kim/);
  let rows = await page.locator("table.inbox tbody tr[id^=message-]").allTextContents();
  check(rows.length > 0 && rows.some((r) => r.includes("kim@example.org")) && rows.every((r) => /kim/i.test(r)),
    `searching "kim" finds Kim's mail and only mail about a Kim: ${rows}`);
  check((await page.locator(`#message-${s.erika_message}`).count()) === 0, "not Erika's");
  await page.screenshot({ path: `${s.shots}/inbox-search.png`, fullPage: true });
  await page.getByRole("link", { name: "Filter zurücksetzen" }).click();
  await page.getByLabel("Kategorie").selectOption("cv");
  await page.getByLabel("Stelle").selectOption("backend-rust");
  await page.getByRole("button", { name: "Filtern" }).click();
  await page.waitForURL(/category=cv/);
  rows = await page.locator("table.inbox tbody tr[id^=message-]").allTextContents();
  check(rows.length === 1 && (await page.locator(`#message-${s.erika_message}`).count()) === 1, `a CV for the Rust position: Erika's mail only (${rows.length})`);
  const categories = await page.getByLabel("Kategorie").locator("option").allTextContents();
  check(!categories.some((o) => /Contract|Vertrag/.test(o)), `no filter by a category Anna may not see: ${categories}`);
  await page.goto(`${s.base}/inbox`);

  // ---- Unassigned: Kim's mail, with only the candidate Anna may see suggested.
  await page.getByRole("link", { name: "Nicht zugeordnet" }).first().click();
  await page.waitForURL(/unassigned=1/);
  await page.screenshot({ path: `${s.shots}/unassigned.png`, fullPage: true });
  const select = page.getByLabel("Zuordnen zu Kandidat:in").first();
  const options = await select.locator("option").allTextContents();
  check(options.length === 1 && options[0].includes("Kim Weber"), `only Anna's Kim is suggested: ${options}`);
  await page.getByRole("button", { name: "Zuordnen" }).first().click();
  await page.waitForURL(`${s.base}/candidates/${s.kim_weber}`);
  check((await page.locator(".thread").textContent()).includes("Bewerbung"), "the assigned mail is in Kim's thread");
  // A colleague's mail, with nobody to suggest: assigned by the candidate's number.
  await page.goto(`${s.base}/inbox?unassigned=1`);
  const byNumber = page.locator(`#assign-${s.colleague}`);
  check(await byNumber.evaluate((i) => i.type === "number" && i.required), "no suggestion: a number field to assign by");
  await byNumber.fill(String(s.erika));
  await byNumber.press("Enter");
  await page.waitForURL(`${s.base}/candidates/${s.erika}`);
  check((await page.locator(".thread").textContent()).includes("Frage zur Bewerbung"), "the colleague's mail is in Erika's thread");
  await page.goto(`${s.base}/candidates/${s.kim_weber}`);
  // Our mail the upstream refused: failed, with the upstream's own words.
  const delivery = await page.locator(".thread .delivery.failed").textContent();
  check(delivery.includes("554") && delivery.includes("Der Server antwortete"), `the refusal is shown: ${delivery}`);
  check((await page.locator(".thread .state.failed").textContent()).includes("fehlgeschlagen"), "its state, in German");
  await page.screenshot({ path: `${s.shots}/candidate-delivery.png`, fullPage: true });

  // ---- Erika's page: documents by category; the contract is not there.
  await page.goto(`${s.base}/candidates/${s.erika}`);
  await page.screenshot({ path: `${s.shots}/candidate.png`, fullPage: true });
  const documents = await page.locator("section[aria-labelledby=documents]").textContent();
  check(documents.includes("Lebenslauf.pdf") && documents.includes("portfolio.html"), "Anna sees the CV and the portfolio");
  check(!documents.includes("Arbeitsvertrag"), "Anna does not see the contract on the page");
  const byUrl = await page.request.get(`${s.base}/documents/${s.contract}`);
  check(byUrl.status() === 404, `nor by its URL (${byUrl.status()})`);
  check(!(await page.content()).includes("Arbeitsvertrag"), "nor anywhere in the page's HTML");

  // The CV opens in a new tab, inline as a PDF.
  const [tab] = await Promise.all([
    anna.waitForEvent("page"),
    page.getByRole("link", { name: "Lebenslauf.pdf" }).first().click(),
  ]);
  const pdf = await tab.waitForEvent("response").catch(() => null);
  await tab.waitForLoadState().catch(() => {});
  const cv = await page.request.get(`${s.base}/documents/${s.cv}`);
  check(cv.headers()["content-type"] === "application/pdf", "the CV is served as a PDF");
  check(cv.headers()["content-disposition"].startsWith("inline"), "inline, so the new tab shows it");
  check(tab.url() === `${s.base}/documents/${s.cv}`, `the new tab is the CV (${tab.url()}, ${pdf ? pdf.status() : "-"})`);
  // The browser's own PDF viewer shows it (a sandboxed document's PDF is
  // refused by some browsers: this tab is a top-level one, which is not).
  check(await tab.evaluate(() => document.contentType) === "application/pdf", "the browser's PDF viewer shows the CV");
  await tab.waitForTimeout(1000);
  await tab.screenshot({ path: `${s.shots}/document-pdf.png` });
  await tab.close();
  // The HTML attachment is never shown: a download.
  const html = await page.request.get(`${s.base}/documents/${s.portfolio}`);
  check(html.headers()["content-disposition"].startsWith("attachment"), "an HTML attachment is a download");
  check(html.headers()["content-security-policy"].includes("sandbox"), "in a sandbox even so");

  // ---- The application's status, by keyboard.
  const status = page.getByLabel("Status").first();
  await status.focus();
  await status.selectOption("interview");
  await page.getByRole("button", { name: "Ändern" }).first().press("Enter");
  await page.waitForURL(`${s.base}/candidates/${s.erika}`);
  check((await page.getByLabel("Status").first().inputValue()) === "interview", "the status changed");

  // ---- Documents: the portfolio into another category, a new file by the rules.
  const moveTo = await page.getByLabel("Kategorie: portfolio.html").locator("option").allTextContents();
  check(!moveTo.some((o) => /Contract|Vertrag/.test(o)), `the contract category is not offered to Anna: ${moveTo}`);
  await page.getByLabel("Kategorie: portfolio.html").selectOption("certificate");
  await page.locator("form.recategorise").filter({ has: page.getByLabel("Kategorie: portfolio.html") }).getByRole("button").click();
  await page.waitForURL(new RegExp(`/candidates/${s.erika}`));
  check((await page.getByLabel("Kategorie: portfolio.html").inputValue()) === "certificate", "the portfolio moved to certificates");
  await page.getByLabel(/Dokumente hinzufügen/).setInputFiles({ name: "Arbeitszeugnis.pdf", mimeType: "application/pdf", buffer: Buffer.from("%PDF-1.4 Zeugnis") });
  await page.getByRole("button", { name: "Hochladen" }).click();
  await page.waitForURL(new RegExp(`/candidates/${s.erika}`));
  check((await page.getByLabel("Kategorie: Arbeitszeugnis.pdf").inputValue()) === "certificate", "an upload filed by the rules (zeugnis: certificate)");

  // ---- CSRF: the same change without the form's token is refused.
  const forged = await page.request.post(`${s.base}/applications/${s.erika_application}/status`, {
    form: { status: "rejected", candidate: String(s.erika) },
  });
  check(forged.status() === 403, `a form without the CSRF token is refused (${forged.status()})`);
  await page.reload();
  check((await page.getByLabel("Status").first().inputValue()) === "interview", "and changed nothing");
  // Every other form of the page, without its token or with a wrong one.
  const forms = [
    [`/messages/${s.colleague}/assign`, { candidate: String(s.kim_weber) }],
    [`/documents/${s.cv}/category`, { category: "certificate" }],
    [`/candidates/${s.erika}/compose`, { template: "interview-invitation" }, "multipart"],
    [`/compose?candidate=${s.erika}`, { template: "rejection" }, "multipart"],
    [`/queue/${s.scheduled_item}/cancel`, {}],
    ["/sign-out", {}],
  ];
  for (const [path, fields, kind] of forms) {
    for (const csrf of [undefined, "0".repeat(43)]) {
      const form = csrf ? { ...fields, csrf } : fields;
      const body = kind === "multipart" ? { multipart: form } : { form };
      const r = await page.request.post(`${s.base}${path}`, { ...body, maxRedirects: 0 });
      check(r.status() === 403, `POST ${path} ${csrf ? "with a wrong token" : "without the token"}: 403 (${r.status()})`);
    }
  }
  const upload = await page.request.post(`${s.base}/candidates/${s.erika}/documents`, {
    multipart: { file: { name: "x.pdf", mimeType: "application/pdf", buffer: Buffer.from("%PDF-1.4 x") } },
    maxRedirects: 0,
  });
  check(upload.status() === 403, `an upload without the token: 403 (${upload.status()})`);
  await page.reload();
  check(!(await page.content()).includes("x.pdf"), "and nothing was uploaded");
  check((await page.getByLabel("Kategorie: Lebenslauf.pdf").inputValue()) === "cv", "nor moved");

  // ---- A mail: its text as text; an HTML mail sanitised in a sandboxed frame.
  await page.goto(`${s.base}/messages/${s.erika_message}`);
  check((await page.locator("pre.mail-text").textContent()).includes("anbei meine Unterlagen"), "a text mail is shown as text");
  await page.screenshot({ path: `${s.shots}/message-text.png`, fullPage: true });
  const asked = [];
  page.on("request", (r) => asked.push(r.url()));
  await page.goto(`${s.base}/messages/${s.html_message}`);
  const frame = page.locator("iframe.mail");
  check((await frame.getAttribute("sandbox")) === "allow-popups allow-popups-to-escape-sandbox", "the mail's frame is sandboxed: no scripts, no forms");
  check((await frame.getAttribute("title")).includes("Ihr Profil"), "the frame has a title for screen readers");
  const inner = page.frameLocator("iframe.mail");
  await inner.locator("h2").waitFor();
  check((await inner.locator("h2").textContent()) === "Hallo Team", "the mail's HTML is shown");
  check((await inner.locator("script, form, input, [onmouseover]").count()) === 0, "its script, form and handlers are gone");
  await inner.locator("p").hover();
  check(!asked.some((u) => u.startsWith(s.tracker)), "the tracking pixel is not loaded");
  await page.screenshot({ path: `${s.shots}/message-html.png`, fullPage: true });
  await page.getByRole("button", { name: "Externe Bilder laden" }).click();
  await page.waitForURL(/images=1/);
  await page.frameLocator("iframe.mail").locator("h2").waitFor();
  await page.waitForTimeout(300);
  check(asked.some((u) => u.startsWith(s.tracker)), "remote images load when asked for");
  check(dialogs.length === 0, `nothing in the mail ran: ${dialogs.join("; ")}`);

  // ---- Compose to Erika: the live preview, a new file, the CV again.
  await page.goto(`${s.base}/candidates/${s.erika}`);
  await page.getByRole("link", { name: "Schreiben" }).click();
  await page.waitForURL(/compose$/);
  await page.getByLabel("Vorlage").selectOption("interview-invitation");
  await page.waitForFunction(() => document.getElementById("preview-subject")?.textContent.startsWith("Einladung"));
  const from = await page.locator("#preview dd").first().textContent();
  const chosen = await page.locator("#sender option:checked").textContent();
  check(from.includes("jobs@acme.example") && chosen.includes("jobs@acme.example"),
    `the preview shows the From address the sender field shows: ${from} / ${chosen}`);
  await page.getByLabel("Absender").selectOption("anna");
  await page.waitForFunction(() => document.querySelector("#preview dd")?.textContent.includes("anna.berger@acme.example"));
  check(true, "another sender: the preview's From follows, live");
  await page.getByLabel("Sprache", { exact: true }).selectOption("en");
  await page.waitForFunction(() => document.getElementById("preview-subject")?.textContent.startsWith("Invitation"));
  check(true, "the preview follows the language, live");
  await page.getByLabel("Sprache", { exact: true }).selectOption("");
  await page.waitForFunction(() => document.getElementById("preview-subject")?.textContent.startsWith("Einladung"));
  // A file dragged onto the form (a DataTransfer as a desktop's drag carries it).
  const dragged = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(["%PDF-1.4 Agenda"], "Agenda.pdf", { type: "application/pdf" }));
    return dt;
  });
  await page.dispatchEvent("#compose", "dragenter", { dataTransfer: dragged });
  check(await page.locator("#compose.dragging").count() === 1, "the form shows it takes the drop");
  await page.dispatchEvent("#compose", "drop", { dataTransfer: dragged });
  check((await page.locator("ul.dropped").textContent()).includes("Agenda.pdf"), "the dropped file is listed");
  check(await page.getByLabel(/Neue Dateien/).evaluate((i) => i.files.length === 1 && i.files[0].name === "Agenda.pdf"), "and is in the form's file input");
  await page.getByLabel(/Lebenslauf.pdf/).check();
  const zone = await page.locator("label[for=at]").textContent();
  check(/\((UTC|[A-Za-z]+\/[A-Za-z_]+)\)/.test(zone), `the schedule shows its time zone: ${zone}`);
  await page.screenshot({ path: `${s.shots}/compose.png`, fullPage: true });
  await page.getByRole("button", { name: "Senden" }).click();
  await page.waitForURL(/compose$/);
  check((await page.locator("h1").textContent()).includes("Postausgang"), "the send's summary");
  check((await page.locator("table").textContent()).includes("erika@example.org"), "queued to Erika");
  await page.screenshot({ path: `${s.shots}/sent.png`, fullPage: true });

  // ---- Bulk: the backend position's candidates, chosen from the list.
  await page.getByRole("link", { name: "Kandidat:innen" }).click();
  await page.getByLabel("Stelle").selectOption("backend-rust");
  await page.getByRole("button", { name: "Filtern" }).click();
  await page.waitForURL(/position=backend-rust/);
  const listed = await page.locator("#bulk tbody tr").count();
  check(listed === 2, `two candidates for the position (${listed})`);
  await page.screenshot({ path: `${s.shots}/candidates.png`, fullPage: true });
  await page.getByRole("button", { name: "An die Ausgewählten schreiben" }).click();
  await page.waitForURL(/\/compose\?/);
  check((await page.locator("h1").textContent()).includes("2"), "compose to the two chosen");
  await page.getByLabel("Vorlage").selectOption("rejection");
  await page.waitForFunction(() => document.getElementById("preview-subject")?.textContent.startsWith("Ihre Bewerbung"));
  await page.screenshot({ path: `${s.shots}/compose-bulk.png`, fullPage: true });
  await page.getByRole("button", { name: "Senden" }).click();
  await page.waitForURL(/\/compose$/);
  const summary = await page.locator("table").textContent();
  check(summary.includes("erika@example.org") && summary.includes("kim@example.org"), `both queued: ${summary}`);
  // A candidate named twice in a bulk: one mail, and the summary says why not two.
  await page.goto(`${s.base}/compose?candidate=${s.erika}&candidate=${s.erika}`);
  await page.getByLabel("Vorlage").selectOption("interview-invitation");
  await page.getByRole("button", { name: "Senden" }).click();
  await page.waitForURL(/\/compose$/);
  const twice = await page.locator("table tbody").textContent();
  check(twice.includes("erika@example.org") && twice.includes("übersprungen") && twice.includes("already in this batch"),
    `one queued, one skipped and why: ${twice}`);
  await page.screenshot({ path: `${s.shots}/sent-skipped.png`, fullPage: true });

  // ---- Scheduled from the page: an invitation to Kim for later, in the server's zone.
  await page.goto(`${s.base}/candidates/${s.kim_weber}/compose`);
  await page.getByLabel("Vorlage").selectOption("interview-invitation");
  await page.waitForFunction(() => document.getElementById("preview-subject")?.textContent.startsWith("Einladung"));
  await page.getByLabel(/Später senden|Senden am|Zeitpunkt/).fill("2031-03-01T09:00");
  await page.getByRole("button", { name: "Senden" }).click();
  await page.waitForURL(/compose$/);
  const planned = await page.locator("main").textContent();
  check(planned.includes("Geplant für") && planned.includes("2031-03-01 09:00"), `scheduled, with its time: ${planned.replace(/\s+/g, " ")}`);
  await page.screenshot({ path: `${s.shots}/sent-scheduled.png`, fullPage: true });

  // ---- English, and a phone.
  await page.goto(`${s.base}/candidates/${s.erika}?lang=en`);
  check((await page.locator("h2").first().textContent()) === "Applications", "English on asking");
  await page.screenshot({ path: `${s.shots}/candidate-en.png`, fullPage: true });
  const phone = await context({ viewport: { width: 390, height: 844 }, isMobile: true });
  const small = await signIn(phone, s.anna_token);
  await small.screenshot({ path: `${s.shots}/inbox-phone.png`, fullPage: true });
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  check(!overflow, "the inbox fits a phone's width");

  // ---- The settings, read-only, without a secret.
  await page.getByRole("link", { name: /Einstellungen|Settings/ }).click();
  await page.waitForURL(`${s.base}/settings`);
  const settings = await page.locator("main").textContent();
  check(settings.includes("interview-invitation") && settings.includes("jobs@acme.example"), "templates and subsidiaries are listed");
  check(settings.includes("manage_candidates"), "and the roles' rights");
  check(!(await page.content()).includes(s.anna_token) && !(await page.content()).includes(s.olaf_token), "no token in the settings");
  await page.screenshot({ path: `${s.shots}/settings.png`, fullPage: true });

  // ---- Sign-out ends the session.
  await page.getByRole("button", { name: /Sign out|Abmelden/ }).click();
  await page.waitForURL(`${s.base}/sign-in`);
  const after = await page.request.get(`${s.base}/candidates/${s.erika}`, { maxRedirects: 0 });
  check(after.status() === 303, "after sign-out the session no longer opens pages");

  // ---- Olaf (operator) sees the contract.
  const olaf = await context();
  const ops = await signIn(olaf, s.olaf_token);
  await ops.goto(`${s.base}/candidates/${s.erika}`);
  check((await ops.locator("section[aria-labelledby=documents]").textContent()).includes("Arbeitsvertrag.pdf"), "Olaf sees the contract");
  await ops.screenshot({ path: `${s.shots}/candidate-operator.png`, fullPage: true });

  // ---- The queue is the operator's: Anna may not open it.
  const refused = await small.request.get(`${s.base}/queue`, { maxRedirects: 0 });
  check(refused.status() === 403, `the queue is not Anna's (${refused.status()})`);
  check((await small.locator("nav[aria-label=main]").textContent()).indexOf("Warteschlange") < 0, "nor in her menu");
  await ops.getByRole("link", { name: "Warteschlange" }).click();
  await ops.waitForURL(`${s.base}/queue`);
  const row = ops.locator(`#item-${s.scheduled_item}`);
  check((await row.textContent()).includes("geplant"), "the scheduled mail is listed as scheduled (geplant)");
  check((await ops.locator(".states").textContent()).includes("geplant"), "the states are counted, in German");
  await ops.screenshot({ path: `${s.shots}/queue.png`, fullPage: true });
  await row.getByRole("button", { name: /Stornieren/ }).click();
  await ops.waitForURL(/\/queue/);
  check((await ops.locator(`#item-${s.scheduled_item}`).textContent()).includes("storniert"), "cancelled (storniert) before it went");
  check(dialogs.length === 0, `no hostile string ran anywhere: ${dialogs.join("; ")}`);
  console.log("all checks passed");
} catch (e) {
  console.error(e.stack || String(e));
  process.exitCode = 1;
} finally {
  await browser.close();
}
