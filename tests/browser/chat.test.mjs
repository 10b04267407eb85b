// The chat page (examples/web/index.html) in headless Chromium against a real tcp_chat.
//
//   node tests/browser/chat.test.mjs TCP_CHAT [SCREENSHOT_DIR]
//
// TCP_CHAT is the built binary; SCREENSHOT_DIR (default ./browser-screenshots) receives a
// 1280x800 PNG at each key moment, to be looked at. The browser is the system's Chromium
// ($CHROMIUM, default /usr/bin/chromium), driven by puppeteer-core, which never downloads one
// (install with `npm ci --prefix tests/browser`; PUPPETEER_SKIP_DOWNLOAD=1 for good measure).
// CTest runs it as the test "browser/chat" (label browser) when Node and Chromium are found.
//
// One tcp_chat (--offline, so acks and the offline inbox are on) and one browser serve all the
// steps below, in order; each step waits for what it expects with a deadline, never a sleep.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

// puppeteer-core comes from `npm ci --prefix tests/browser`; without it the test is skipped
// (exit 77, CTest's SKIP_RETURN_CODE) with that advice rather than failing on an import.
let puppeteer;
try {
  puppeteer = (await import("puppeteer-core")).default;
} catch (e) {
  if (e.code !== "ERR_MODULE_NOT_FOUND") throw e;
  console.error("chat.test.mjs: puppeteer-core is not installed (" + e.code + "): run\n" +
                "  PUPPETEER_SKIP_DOWNLOAD=1 npm ci --prefix tests/browser\n" +
                "first (it uses the system's Chromium and downloads no browser). Skipping.");
  process.exit(77);
}

const tcpChat = process.argv[2];
const shots = path.resolve(process.argv[3] || "browser-screenshots");
const chromium = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT_MS = 5000; // deadline of one expectation
if (!fs.existsSync(chromium)) {
  console.error(`chat.test.mjs: no Chromium at ${chromium} (set CHROMIUM, or apt install chromium)`);
  process.exit(2);
}
if (!tcpChat || !fs.existsSync(tcpChat)) {
  console.error("usage: node chat.test.mjs TCP_CHAT [SCREENSHOT_DIR] (tcp_chat not found: " + tcpChat + ")");
  process.exit(2);
}
fs.mkdirSync(shots, { recursive: true });

// --- tcp_chat --------------------------------------------------------------------------------
// Starts tcp_chat and resolves once both listeners are up, with their ports read from stderr.
function startServer(port = 0, wsPort = 0) {
  const proc = spawn(tcpChat, ["--port", String(port), "--ws-port", String(wsPort), "--offline"],
                     { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("tcp_chat did not start:\n" + log)), 10000);
    proc.on("exit", (code, sig) => reject(new Error(`tcp_chat exited (${code ?? sig}):\n${log}`)));
    proc.stderr.on("data", (d) => {
      log += d;
      const line = /listening on 127\.0\.0\.1:(\d+)/.exec(log), web = /browsers: open http:\/\/127\.0\.0\.1:(\d+)\//.exec(log);
      if (line && web) {
        clearTimeout(timer);
        resolve({ proc, port: Number(line[1]), wsPort: Number(web[1]), log: () => log });
      }
    });
  });
}
// Stops it with SIGTERM, as Ctrl-C would; it must exit 0 (no sanitizer report, no leak).
async function stopServer(server) {
  if (!server) return;
  if (server.proc.exitCode === null && !server.proc.signalCode) {
    await new Promise((resolve) => { server.proc.once("exit", resolve); server.proc.kill("SIGTERM"); });
  }
  assert.equal(server.proc.exitCode, 0, "tcp_chat's exit status; its stderr:\n" + server.log());
  assert.doesNotMatch(server.log(), /Sanitizer|runtime error/, "tcp_chat's stderr");
}

// --- the netcat role: a line-protocol client on Node's net -----------------------------------
class LineClient {
  constructor(port) {
    this.lines = [];
    this.waiters = [];
    this.socket = net.connect(port, "127.0.0.1");
    let buf = "";
    this.socket.setEncoding("utf8");
    this.socket.on("data", (d) => {
      buf += d;
      for (let i; (i = buf.indexOf("\n")) >= 0; buf = buf.slice(i + 1)) this.lines.push(buf.slice(0, i));
      this.waiters = this.waiters.filter((w) => !w());
    });
  }
  send(line) { this.socket.write(line + "\n"); }
  // Resolves with the first line (from the start of the conversation) equal to `line`.
  expect(line) {
    return new Promise((resolve, reject) => {
      const check = () => { if (this.lines.includes(line)) { clearTimeout(t); resolve(line); return true; } return false; };
      const t = setTimeout(() => reject(new Error(`netcat client: no line "${line}"; got:\n${this.lines.join("\n")}`)), WAIT_MS);
      if (!check()) this.waiters.push(check);
    });
  }
  close() { this.socket.destroy(); }
}

// --- pages -----------------------------------------------------------------------------------
let browser, server, base;
const pageErrors = []; // uncaught exceptions in the pages: checked by the last step
// A tab behind another renders no frame: bring it to the front first.
async function shot(page, name) {
  await page.bringToFront();
  await page.screenshot({ path: path.join(shots, name + ".png") });
}

// Input goes to the tab in front: a click or a key press on a tab behind another stalls.
async function click(page, selector, options) { await page.bringToFront(); await page.click(selector, options); }
async function type(page, selector, text) { await page.bringToFront(); await page.type(selector, text); }
async function press(page, key) { await page.bringToFront(); await page.keyboard.press(key); }

async function openPage(name, firstShot) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  // Records every WebSocket message of the page, both ways, to check what it says on the wire.
  await page.evaluateOnNewDocument(() => {
    window.__wire = [];
    const Base = window.WebSocket;
    window.WebSocket = class extends Base {
      constructor(...args) {
        super(...args);
        this.addEventListener("message", (e) => window.__wire.push({ dir: "in", msg: JSON.parse(e.data) }));
      }
      send(data) { window.__wire.push({ dir: "out", msg: JSON.parse(data) }); super.send(data); }
    };
  });
  page.on("pageerror", (e) => pageErrors.push(`page of ${name}: ${e.message}`));
  await page.goto(base);
  if (firstShot) {
    await waitText(page, "#status", (t) => t === "connected", `${name}'s page connected`);
    await shot(page, firstShot);
  }
  await type(page, "#name", name);
  await click(page, "#register");
  await waitText(page, "#me", (t) => t === name, `${name} registered`);
  return page;
}

// Polls `read` (an async function) every 50 ms until `ok` holds for its value; fails after
// WAIT_MS with `what` and the last value.
async function until(read, ok, what) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: got ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
// The text of `selector` ("" when there is none).
const textOf = (page, selector) => page.evaluate((sel) => document.querySelector(sel)?.textContent ?? "", selector);
const waitText = (page, selector, ok, what) => until(() => textOf(page, selector), ok, `${what} (${selector})`);
// The mark under the last sent bubble whose text is `text`.
const waitMark = (page, text, ok, what) => until(() => page.evaluate((want) => {
  const b = [...document.querySelectorAll(".bubble.out")].filter((x) => x.querySelector(".text").textContent === want).pop();
  return b ? b.querySelector(".mark")?.textContent ?? "(no mark)" : "(no such message)";
}, text), ok, what);
// An incoming bubble with this sender line and text.
const waitIncoming = (page, who, text, what) => until(() => page.evaluate(() =>
  [...document.querySelectorAll(".bubble.in")].map((b) => [b.querySelector(".who").textContent, b.querySelector(".text").textContent])),
(list) => list.some(([w, t]) => w === who && t === text), what);
const waitMessages = (page, ok, what) => waitText(page, "#messages", ok, what);

async function setTo(page, to) {
  await click(page, "#to", { count: 3 });
  await press(page, "Backspace");
  await type(page, "#to", to);
  await click(page, "#text"); // "change" on #to: the page watches the target
}
async function say(page, to, text) {
  if ((await page.$eval("#to", (el) => el.value)) !== to) await setTo(page, to);
  await type(page, "#text", text);
  await press(page, "Enter");
}
const wire = (page) => page.evaluate(() => window.__wire);

// Fails on anything that sticks out of the window sideways.
async function assertNoOverflow(page, what) {
  const r = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, win: window.innerWidth }));
  assert.ok(r.doc <= r.win, `${what}: the page is ${r.doc} px wide in a ${r.win} px window`);
}

// --- the steps -------------------------------------------------------------------------------
describe("the chat page in Chromium", { timeout: 60000 }, () => {
  let alice, bob, carol;

  before(async () => {
    server = await startServer();
    base = `http://127.0.0.1:${server.wsPort}/`;
    browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
      // The others: the pages behind the one in front keep their timers (the page's reconnect
      // backoff) at full speed, and /dev/shm may be small in a container.
      args: ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=en-US",
             "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows",
             "--disable-renderer-backgrounding"],
    });
  });
  after(async () => {
    carol?.close();
    await browser?.close();
    await stopServer(server);
  });

  it("two pages register alice and bob and exchange messages, each marked delivered", async () => {
    alice = await openPage("alice", "00-start");
    bob = await openPage("bob");
    await say(alice, "bob", "hi bob, lunch at noon?");
    await waitIncoming(bob, "alice", "hi bob, lunch at noon?", "bob's page");
    await waitMark(alice, "hi bob, lunch at noon?", (t) => t.includes("delivered"), "alice's mark");
    await say(bob, "alice", "sure, see you there");
    await waitIncoming(alice, "bob", "sure, see you there", "alice's page");
    await waitMark(bob, "sure, see you there", (t) => t.includes("delivered"), "bob's mark");
    await waitText(alice, "#presence", (t) => t === "bob is online", "alice sees bob online");
    await shot(alice, "01-alice-and-bob");
    await shot(bob, "01-bob-and-alice");
    // Acks on before register (the offline inbox then replays as dm), every dm acknowledged.
    const w = await wire(bob);
    const out = w.filter((x) => x.dir === "out").map((x) => x.msg);
    assert.ok(out.findIndex((m) => m.type === "ack" && m.on) < out.findIndex((m) => m.type === "register"),
              "ack on before register: " + JSON.stringify(out));
    const dm = w.find((x) => x.dir === "in" && x.msg.type === "dm").msg;
    assert.ok(out.some((m) => m.type === "ack" && m.seq === dm.seq), "dm acknowledged");
    await assertNoOverflow(alice, "1280 px");
  });

  it('shows "user not found" clearly', async () => {
    await say(alice, "nobody", "anyone there?");
    await waitMark(alice, "anyone there?", (t) => t.includes("user not found"), "the failed mark");
    await waitText(alice, "#messages li.error:last-child", (t) => t.includes("user not found") && t.includes("nobody"),
                   "the error line");
    await shot(alice, "02-user-not-found");
  });

  it("a netcat client (carol) chats 1:1 with a page, and #lobby holds both", async () => {
    carol = new LineClient(server.port);
    carol.send("/register carol");
    await carol.expect("ok register carol");
    await say(alice, "carol", "hello from the browser");
    await carol.expect("msg alice hello from the browser");
    await waitMark(alice, "hello from the browser", (t) => t.includes("delivered"), "alice's mark to carol");
    carol.send("/msg alice hello from the terminal");
    await waitIncoming(alice, "carol", "hello from the terminal", "alice's page");
    // the room: alice joins from the page, carol from the terminal
    await type(alice, "#room", "lobby");
    await click(alice, "#join");
    await waitText(alice, "#rooms-list", (t) => t.includes("#lobby"), "alice's room list");
    carol.send("/join lobby");
    await carol.expect("ok join lobby");
    await waitMessages(alice, (t) => t.includes("carol joined #lobby"), "carol's join on alice's page");
    carol.send("#lobby hi room, carol here");
    await waitIncoming(alice, "#lobby · carol", "hi room, carol here", "room message on alice's page");
    await say(alice, "#lobby", "hi carol, alice in the room");
    await carol.expect("room lobby alice hi carol, alice in the room");
    await waitText(alice, "#presence", (t) => t === "room message", "the target line for a room");
    await shot(alice, "03-netcat-and-lobby");
  });

  it("presence and typing: alice typing shows on bob's page, bob offline with last seen on alice's", async () => {
    await setTo(alice, "bob");
    await waitText(alice, "#presence", (t) => t === "bob is online", "bob online");
    await type(alice, "#text", "are you still");
    await waitText(bob, "#typing", (t) => t === "alice is typing…", "typing indicator on bob's page");
    await shot(bob, "04-bob-sees-alice-typing");
    await click(alice, "#text", { count: 3 });
    await press(alice, "Backspace");
    await bob.close();
    bob = null;
    await waitText(alice, "#presence", (t) => /^bob is offline · last seen \S/.test(t), "bob offline with last seen");
    await shot(alice, "05-bob-offline-last-seen");
  });

  it("offline: queued while bob is away, delivered (and acknowledged) when his page registers again", async () => {
    await say(alice, "bob", "call me when you are back");
    await waitMark(alice, "call me when you are back", (t) => t.includes("queued"), "the queued mark");
    await shot(alice, "06-queued");
    bob = await openPage("bob");
    await waitIncoming(bob, "alice", "call me when you are back", "the offline message on bob's page");
    await waitText(alice, "#presence", (t) => t === "bob is online", "bob back online");
    const w = await wire(bob);
    const dm = w.find((x) => x.dir === "in" && x.msg.type === "dm" && x.msg.text === "call me when you are back");
    assert.ok(dm, "came as a dm (acks on)");
    await bob.waitForFunction((seq) => window.__wire.some((x) => x.dir === "out" && x.msg.type === "ack" && x.msg.seq === seq),
                              { timeout: WAIT_MS }, dm.msg.seq);
    await shot(bob, "07-offline-message-arrived");
  });

  it("reconnect: tcp_chat restarts on the same ports, the pages come back with backoff and re-register", async () => {
    const { port, wsPort } = server;
    await stopServer(server);
    await waitText(alice, "#status", (t) => t.includes("retrying in"), "alice's page backing off");
    await waitText(alice, "#me", (t) => t.includes("alice") && t !== "alice", "alice shown as not registered");
    await shot(alice, "08-reconnecting");
    server = await startServer(port, wsPort);
    for (const [page, name] of [[alice, "alice"], [bob, "bob"]]) {
      await waitText(page, "#status", (t) => t === "connected", `${name}'s page reconnected`);
      await waitText(page, "#me", (t) => t === name, `${name} registered again`);
    }
    await waitText(alice, "#rooms-list", (t) => t.includes("#lobby"), "alice still in #lobby");
    await say(alice, "bob", "still there after the restart?");
    await waitIncoming(bob, "alice", "still there after the restart?", "after the restart, bob's page");
    await waitMark(alice, "still there after the restart?", (t) => t.includes("delivered"), "delivered after the restart");
    // the rooms were joined again: a new netcat carol in #lobby hears alice
    carol.close();
    carol = new LineClient(server.port);
    carol.send("/register carol");
    carol.send("/join lobby");
    await carol.expect("ok join lobby");
    await say(alice, "#lobby", "the lobby survived");
    await carol.expect("room lobby alice the lobby survived");
    await shot(alice, "09-reconnected");
  });

  it("stays tidy in a narrow window (420 px)", async () => {
    await alice.setViewport({ width: 420, height: 800 });
    await say(alice, "#lobby", "a long link: https://example.org/" + "averyveryverylongpathsegment".repeat(6));
    await carol.expect("room lobby alice a long link: https://example.org/" + "averyveryverylongpathsegment".repeat(6));
    await assertNoOverflow(alice, "420 px");
    await shot(alice, "10-narrow-420");
    await alice.setViewport({ width: 1280, height: 800 });
  });

  it("no page threw an exception", () => assert.deepEqual(pageErrors, []));
});
