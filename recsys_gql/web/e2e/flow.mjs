// The people's page in Debian's headless Chromium (playwright-core, executablePath), against
// live servers started by tests/e2e/test_web_browser.py, which passes:
//   WEB_URL       a server with the real ml-latest-small artifacts and roomy rate limits
//   LIMITED_URL   the same data behind a tiny read limit (to meet a 429)
//   SCREENSHOTS   where to save PNGs;  CHROMIUM  the browser binary
//   FAMILY        JSON list of [search text, exact title, genre filter] to rate 5 stars
//   DESCRIPTION   JSON [description, expected title] for the search by description
// It drives the page like a person and prints one JSON line with what it saw; the pytest
// module asserts on it. Any missing element, page error or outside request fails the run.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const WEB_URL = process.env.WEB_URL;
const LIMITED_URL = process.env.LIMITED_URL;
const SCREENSHOTS = process.env.SCREENSHOTS;
const FAMILY = JSON.parse(process.env.FAMILY ?? "[]");
const [DESCRIPTION, DESCRIBED] = JSON.parse(process.env.DESCRIPTION ?? "[]");
const TIMEOUT = 60_000;
assert.ok(WEB_URL && LIMITED_URL && SCREENSHOTS && FAMILY.length && DESCRIPTION, "missing env");
mkdirSync(SCREENSHOTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

const seen = { requests: [], pageErrors: [], consoleErrors: [] };

async function open(url, viewport, token) {
  const context = await browser.newContext({ viewport, serviceWorkers: "block" });
  context.setDefaultTimeout(TIMEOUT);
  context.on("request", (request) => seen.requests.push(request.url()));
  if (token) {
    await context.addInitScript((t) => window.localStorage.setItem("recsys-gql.token", t), token);
  }
  const page = await context.newPage();
  page.on("pageerror", (error) => seen.pageErrors.push(String(error)));
  page.on("console", (message) => {
    // a refused request (the planned 429) is logged by Chromium itself; anything else counts
    if (message.type() === "error" && !/status of 429/.test(message.text())) {
      seen.consoleErrors.push(message.text());
    }
  });
  const response = await page.goto(url);
  assert.equal(response?.status(), 200, `GET ${url}`);
  await page.getByRole("heading", { name: /Movie picks/ }).waitFor();
  return { context, page };
}

async function search(page, text, mode, genre = "", wait = true) {
  await page.getByLabel(mode === "title" ? "by title" : "by description").check();
  await page.getByRole("search").getByLabel("Genre").selectOption(genre);
  const box = page.getByRole("searchbox");
  await box.fill(text);
  await page.getByRole("button", { name: "Search", exact: true }).click();
  if (wait) {
    // the answer names what was searched (earlier results stay up until it arrives)
    await page.locator(".search-results > p").filter({ hasText: `“${text}”` }).waitFor();
  }
}

async function forYouItems(page) {
  const list = page.getByRole("list", { name: "Recommended movies" });
  return list.locator(":scope > li").evaluateAll((items) =>
    items.map((li) => ({
      title: li.querySelector("h3")?.textContent?.trim() ?? "",
      meta: li.querySelector(".meta")?.textContent ?? "",
      because: [...li.querySelectorAll(".because button")].map((b) => b.textContent?.trim() ?? ""),
      summary: li.querySelector(".why")?.textContent ?? "",
      bar: li.querySelector(".scorebar")?.getAttribute("aria-label") ?? "",
    })),
  );
}

const result = {};
let current; // the page in use, for a screenshot when a step fails
const step = (name) => process.stderr.write(`[flow] ${new Date().toISOString()} ${name}\n`);
try {
  // 1. first visit: paints, shows the popular grid, signs up in one click
  const desktop = await open(`${WEB_URL}/`, { width: 1280, height: 900 });
  const page = desktop.page;
  current = page;
  await page.getByRole("list", { name: "Popular movies" }).locator("li").first().waitFor();
  await page.getByRole("button", { name: "Sign up in one click" }).click();
  await page.getByText(/Signed in as/).waitFor();
  const token = await page.evaluate(() => window.localStorage.getItem("recsys-gql.token"));
  assert.match(token ?? "", /.{16,}/, "the token is kept in localStorage");

  // 2. rate five animated family movies with 5 stars, found by title
  const rated = [];
  for (const [text, title, genre] of FAMILY) {
    step(`rate ${title}`);
    await search(page, text, "title", genre);
    const results = page.getByRole("list", { name: "Search results" });
    const card = results.locator("li").filter({
      has: page.getByRole("heading", { name: title, exact: true }),
    });
    await card.first().waitFor();
    await card.first().getByRole("button", { name: `Rate ${title} 5 stars` }).click();
    await card.first().getByText("Saved: 5 stars.").waitFor();
    rated.push(title);
    // "For you" is asked again after each rating
    await page.getByText(`From your ${rated.length} rating${rated.length === 1 ? "" : "s"}.`, {
      exact: false,
    }).waitFor();
  }
  const forYou = page.getByRole("region", { name: "For you" });
  await forYou.and(page.locator("[aria-busy=false]")).waitFor();
  result.rated = rated;
  result.forYou = await forYouItems(page);
  await page.screenshot({ path: join(SCREENSHOTS, "web-for-you-desktop.png"), fullPage: false });
  await forYou.screenshot({ path: join(SCREENSHOTS, "web-for-you-panel.png") });

  step("for you read");
  // 3. the α slider and a genre chip change the list (one more read each)
  const slider = page.getByLabel(/Blend/);
  await slider.focus();
  await page.keyboard.press("End"); // α = 1: people like you only (input + change events)
  await page.getByText("α = 1.0").waitFor();
  await forYou.and(page.locator("[aria-busy=false]")).waitFor();
  result.forYouAlpha1 = await forYouItems(page);
  await page.getByRole("button", { name: "Auto" }).click();
  await page.getByRole("group", { name: "Only these genres" })
    .getByRole("button", { name: "Comedy" }).click();
  await forYou.and(page.locator("[aria-busy=false]")).waitFor();
  result.forYouComedy = await forYouItems(page);
  await page.getByRole("group", { name: "Only these genres" })
    .getByRole("button", { name: "Comedy" }).click();

  step("alpha and genre chips done");
  // 4. find a movie by describing it, open it
  await search(page, DESCRIPTION, "description");
  const found = page.getByRole("list", { name: "Search results" });
  await found.locator("li").first().waitFor();
  result.description = await found.locator("h3").allTextContents();
  await found.getByRole("button", { name: DESCRIBED, exact: true }).first().click();
  const detail = page.getByRole("region", { name: DESCRIBED });
  await detail.getByRole("heading", { name: "Similar movies" }).waitFor();
  result.detail = {
    meta: await detail.locator(".meta").first().textContent(),
    overview: await detail.locator(".overview").textContent(),
    similar: await detail.locator(".similar button").allTextContents(),
  };
  await page.screenshot({ path: join(SCREENSHOTS, "web-movie-desktop.png") });
  await page.keyboard.press("Escape");
  await desktop.context.close();

  step("description search done");
  // 5. the same user on a phone: readable, nothing wider than the screen
  const phone = await open(`${WEB_URL}/`, { width: 390, height: 844 }, token);
  current = phone.page;
  await phone.page.getByText(/Signed in as/).waitFor();
  await phone.page.getByRole("list", { name: "Recommended movies" }).locator("li").first().waitFor();
  result.phoneOverflow = await phone.page.evaluate(
    () => document.documentElement.scrollWidth - window.innerWidth,
  );
  await phone.page.getByRole("region", { name: "For you" }).scrollIntoViewIfNeeded();
  await phone.page.screenshot({ path: join(SCREENSHOTS, "web-for-you-phone.png") });
  await phone.context.close();

  step("phone done");
  // 6. a throttled server: the page says when to retry
  const limited = await open(`${LIMITED_URL}/`, { width: 1280, height: 900 });
  current = limited.page;
  let alert = limited.page.getByRole("alert").filter({ hasText: "Too many requests" });
  for (let attempt = 0; attempt < 5 && !(await alert.count()); attempt += 1) {
    await search(limited.page, "Toy Story", "title", "", false);
    await limited.page.waitForFunction(
      () => !document.querySelector(".search-results")?.textContent?.includes("Searching"),
    );
  }
  await alert.first().waitFor();
  result.rateLimited = await alert.first().textContent();
  await limited.page.screenshot({ path: join(SCREENSHOTS, "web-rate-limited.png") });
  await limited.context.close();
} catch (error) {
  if (current) await current.screenshot({ path: join(SCREENSHOTS, "web-failure.png") }).catch(() => {});
  throw error;
} finally {
  await browser.close();
}

result.requests = seen.requests;
result.pageErrors = seen.pageErrors;
result.consoleErrors = seen.consoleErrors;
console.log(JSON.stringify(result));
