// "For you" updates itself after a rating: no reload, no polling request, a WebSocket frame.
// Started by tests/e2e/test_web_live.py with WEB_URL (a live server), CHROMIUM and TITLE (a
// movie to rate first, found by title). Prints one JSON line with what it saw.
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const WEB_URL = process.env.WEB_URL;
const TITLE = process.env.TITLE;
const TIMEOUT = 60_000;
const QUIET_MS = 4000; // after the update, how long to watch for a polling request
assert.ok(WEB_URL && TITLE, "missing env");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const seen = { pageErrors: [], http: [], frames: [], sockets: [] };
let watching = false; // record network traffic only after the page's first list
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  page.on("pageerror", (error) => seen.pageErrors.push(String(error)));
  page.on("request", (request) => {
    if (!watching || request.resourceType() === "websocket") return;
    const body = request.postData();
    let operation = null;
    try {
      operation = body ? JSON.parse(body).operationName ?? null : null;
    } catch {}
    seen.http.push({ url: request.url(), method: request.method(), operation });
  });
  page.on("websocket", (socket) => {
    seen.sockets.push(socket.url());
    socket.on("framereceived", (frame) => {
      if (!watching) return;
      const text = typeof frame.payload === "string" ? frame.payload : frame.payload.toString();
      seen.frames.push(text);
    });
  });
  const response = await page.goto(`${WEB_URL}/`);
  assert.equal(response?.status(), 200);
  await page.getByRole("button", { name: "Sign up in one click" }).click();
  await page.getByText(/Signed in as/).waitFor();

  // one rating, so "For you" is personal; then read the list the subscription sent
  await page.getByLabel("by title").check();
  await page.getByRole("searchbox").fill(TITLE);
  await page.getByRole("button", { name: "Search", exact: true }).click();
  const card = page.getByRole("list", { name: "Search results" }).locator("li").filter({
    has: page.getByRole("heading", { name: TITLE, exact: true }),
  }).first();
  await card.getByRole("button", { name: `Rate ${TITLE} 5 stars` }).click();
  await card.getByText("Saved: 5 stars.").waitFor();
  const forYou = page.getByRole("region", { name: "For you" });
  await page.getByText("From your 1 rating.").waitFor();
  await forYou.and(page.locator("[aria-busy=false]")).waitFor();
  const titles = () =>
    forYou.getByRole("list", { name: "Recommended movies" }).locator(":scope > li h3")
      .allTextContents();
  const before = await titles();
  assert.ok(before.length > 0, "For you is empty");
  await page.evaluate(() => { window.__sameDocument = true; });

  // rate the top recommendation from the For you list itself
  watching = true;
  const top = before[0];
  const item = forYou.locator("li").filter({ has: page.getByRole("heading", { name: top, exact: true }) }).first();
  await item.getByRole("button", { name: `Rate ${top} 4 stars` }).click();
  await page.getByText("From your 2 ratings.").waitFor();
  await forYou.and(page.locator("[aria-busy=false]")).waitFor();
  const after = await titles();
  await page.waitForTimeout(QUIET_MS);
  watching = false;
  const sameDocument = await page.evaluate(() => window.__sameDocument === true);
  process.stdout.write(`${JSON.stringify({ ...seen, top, before, after, sameDocument })}\n`);
} finally {
  await browser.close();
}
