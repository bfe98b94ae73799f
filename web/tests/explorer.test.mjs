// End-to-end tests of the explorer in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; never a browser download). Two modes:
//   webgpu: --enable-unsafe-webgpu --enable-features=Vulkan --use-vulkan=swiftshader
//           --use-angle=swiftshader — the only set under which eframe both renders and computes
//           through WebGPU here; the explorer must report "WebGPU compute on ...".
//   webgl:  --disable-gpu --enable-unsafe-swiftshader — WebGL2, so the CPU path.
// They assert what a person would see: the app starts, the compute path it reports, the step
// key advances the step counter, the canvas is not blank, and a link reopens the same state.
// The Quantization view (an MLP trained live on the CPU) opens from a hand-written link, replays
// it to the step it names, trains while playing, and its own link retrains to the same numbers.
// The Alignment lab opens from `#align=rich-features&seed=2&step=2`, replays the rounds, steps and
// plays them to the end, and its link replays a fresh page to the same KLs; GRPO steps by runs.
// The Compression lab opens TEDDY from `#compress=teddy&edges=0.3&step=40` (the graph at 30 %
// removed, two GCNs trained), steps and plays, and its link reopens the same state; its MoE half
// from `#compress=moe&step=40` shows every scorer and distils the first, replayed by its link.
// The Transformer lab opens from `#transformer=adamw,muon&step=10&eval=20` (a 2-layer GPT, C = 64, two
// optimizers from one initialisation), replays its link on the GPU under WebGPU and on the CPU
// under WebGL2, plays until the loss has fallen, pauses while the page is hidden, and reports the
// training tokens/s it measures (printed as a diagnostic: BENCHMARKS.md's browser figure).
// The status is read from the page's #status element (data-* attributes), not from pixels.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "dist");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const BASE_FLAGS = ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync"];
const MODES = {
  webgpu: { flags: ["--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader", "--use-angle=swiftshader"],
            compute: /^WebGPU compute on / },
  webgl: { flags: ["--disable-gpu", "--enable-unsafe-swiftshader"], compute: /^CPU \(WebGL2 has no compute shaders\)$/ },
};
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

let server;
let base;

before(async () => {
  assert.ok(fs.existsSync(path.join(dist, "optiscope_app_bg.wasm")), "web/dist is not built: run web/build.sh first");
  server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    const file = path.join(dist, url.pathname === "/" ? "index.html" : path.normalize(url.pathname));
    if (!file.startsWith(dist) || !fs.existsSync(file)) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${server.address().port}/`;
});

after(() => server?.close());

async function launch(mode) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "optiscope-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: [...BASE_FLAGS, ...MODES[mode].flags],
    viewport: { width: 1280, height: 800 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const logs = [];
  page.on("console", (m) => logs.push(m.text()));
  page.on("pageerror", (e) => logs.push(String(e)));
  return { context, page, logs, close: async () => { await context.close(); fs.rmSync(userDataDir, { recursive: true, force: true }); } };
}

const status = (page) => page.evaluate(() => {
  const s = document.getElementById("status");
  return { text: s.textContent, compute: s.dataset.compute, step: Number(s.dataset.step), frameMs: Number(s.dataset.frameMs),
           stepsPerS: Number(s.dataset.stepsPerS), preset: s.dataset.preset, view: s.dataset.view, link: s.dataset.link,
           detail: s.dataset.detail, message: s.dataset.message,
           error: document.getElementById("error").textContent, loading: document.getElementById("loading").textContent };
});

async function waitForApp(page, logs) {
  try {
    await page.waitForFunction(() => document.getElementById("status")?.dataset.step !== undefined, null, { timeout: 90_000 });
  } catch (e) {
    throw new Error(`the explorer did not start: ${JSON.stringify(await status(page).catch(() => ({})))}\n${logs.join("\n")}`);
  }
}

// A screenshot of a blank canvas is one color; count distinct pixel values after inflating the PNG.
function distinctBytes(png) {
  let off = 8;
  const idat = [];
  while (off < png.length) {
    const len = png.readUInt32BE(off);
    const type = png.toString("ascii", off + 4, off + 8);
    if (type === "IDAT") idat.push(png.subarray(off + 8, off + 8 + len));
    off += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  return new Set(raw).size;
}

for (const mode of Object.keys(MODES)) {
  test(`explorer in headless Chromium, ${mode}`, async (t) => {
    const { page, logs, close } = await launch(mode);
    try {
      await page.goto(base);
      await waitForApp(page, logs);
      let s = await status(page);
      assert.equal(s.error, "", `error line: ${s.error}`);
      assert.match(s.compute, MODES[mode].compute, `compute path (${mode}): ${s.compute}\n${logs.join("\n")}`);
      assert.equal(s.preset, "river-valley");
      assert.equal(s.step, 0);
      // The app measures its first frame from navigation start (BENCHMARKS.md's figure); the
      // #status mirror is not drawn a second time under the app's own status bar.
      const first = await page.waitForFunction(
        () => Number(document.getElementById("status").dataset.firstFrameMs), null, { timeout: 30_000 });
      const firstMs = await first.jsonValue();
      assert.ok(firstMs > 0, `first frame at ${firstMs} ms`);
      t.diagnostic(`${mode}: first frame ${firstMs} ms after navigation start`);
      const box = await page.locator("#status").boundingBox();
      assert.ok(box === null || (box.width <= 1 && box.height <= 1), `#status is visible: ${JSON.stringify(box)}`);

      // The step key advances the step counter (a person presses S with the canvas focused).
      await page.focus("#the_canvas");
      for (let i = 0; i < 3; i++) await page.keyboard.press("s");
      await page.waitForFunction(() => Number(document.getElementById("status").dataset.step) === 3, null, { timeout: 30_000 });

      // The canvas is not blank.
      const shot = await page.locator("#the_canvas").screenshot();
      const distinct = distinctBytes(shot);
      assert.ok(distinct > 50, `the canvas looks blank (${distinct} distinct byte values in its screenshot)`);

      // The link reopens the same state in a fresh page.
      s = await status(page);
      assert.ok(s.link?.includes("#s="), `no share link in the status: ${s.link}`);
      const other = await page.context().newPage();
      await other.goto(s.link);
      await waitForApp(other, logs);
      await other.waitForFunction(() => Number(document.getElementById("status").dataset.step) === 3, null, { timeout: 30_000 });
      assert.equal((await status(other)).preset, "river-valley");
      await other.close();

      // A link pasted into the address bar of the open explorer (only the hash changes) opens too.
      await page.evaluate(() => { location.hash = "#preset=lora-spectrum"; });
      await page.waitForFunction(() => document.getElementById("status").dataset.preset === "lora-spectrum", null, { timeout: 30_000 });
      assert.equal((await status(page)).view, "spectrum");

      // A malformed fragment gives a visible message and the defaults, not a crash.
      const bad = await page.context().newPage();
      await bad.goto(base + "#s=not-base64!");
      await waitForApp(bad, logs);
      const b = await status(bad);
      assert.equal(b.step, 0);
      assert.match(await bad.evaluate(() => document.getElementById("status").dataset.message), /not valid base64url/);
      await bad.close();

      // Performance, measured by the app itself: six optimizers on the Rosenbrock landscape
      // (256×256 heat map), playing at full speed for a few seconds.
      const perf = await page.context().newPage();
      await perf.goto(base + "#preset=rosenbrock&speed=500&steps=1000000");
      await waitForApp(perf, logs);
      await perf.focus("#the_canvas");
      await perf.keyboard.press("Space");
      await perf.waitForTimeout(6000);
      const p = await status(perf);
      assert.ok(p.step > 3, `playing did not advance (${p.step})`);
      t.diagnostic(`${mode}: ${p.compute}; ${p.frameMs.toFixed(1)} ms/frame, ${p.stepsPerS.toFixed(0)} steps/s, step ${p.step} after 6 s`);
      console.log(`PERF ${mode}: compute="${p.compute}" frame_ms=${p.frameMs.toFixed(2)} steps_per_s=${p.stepsPerS.toFixed(0)} step=${p.step}`);
      await perf.close();
    } finally {
      await close();
    }
  });
}

// A lost WebGPU device (destroyed through the page's test hook, as a driver reset would lose it):
// the page says so and carries on on the CPU path at the same state, drawing with WebGL2.
test("a lost WebGPU device falls back to the CPU, webgpu", async () => {
  const { page, logs, close } = await launch("webgpu");
  try {
    await page.goto(base + "#preset=rosenbrock");
    await waitForApp(page, logs);
    assert.match((await status(page)).compute, MODES.webgpu.compute);
    await page.focus("#the_canvas");
    for (let i = 0; i < 2; i++) await page.keyboard.press("s");
    await page.waitForFunction(() => Number(document.getElementById("status").dataset.step) === 2, null, { timeout: 30_000 });
    const reloaded = page.waitForEvent("load", { timeout: 60_000 });
    assert.equal(await page.evaluate(() => window.optiscopeLoseGpu()), true, "no device to lose");
    await reloaded;
    await waitForApp(page, logs);
    assert.match(page.url(), /&gpu=lost$/);
    await page.waitForFunction(() => Number(document.getElementById("status").dataset.step) === 2, null, { timeout: 30_000 });
    const s = await status(page);
    assert.equal(s.compute, "CPU (the WebGPU device was lost)", `${JSON.stringify(s)}\n${logs.join("\n")}`);
    assert.match(s.message, /^the WebGPU device was lost: the explorer continues on the CPU path/);
    assert.equal(s.preset, "rosenbrock");
    assert.ok(!s.link.includes("gpu="), `the lost GPU is passed on by the link: ${s.link}`);
    const shot = await page.locator("#the_canvas").screenshot();
    assert.ok(distinctBytes(shot) > 50, "the canvas is blank after the fallback");
  } finally {
    await close();
  }
});

const waitForStep = (page, step, timeout = 60_000) => page.waitForFunction(
  (n) => Number(document.getElementById("status").dataset.step) === n, step, { timeout });

for (const mode of Object.keys(MODES)) {
  test(`quantization view in headless Chromium, ${mode}`, async (t) => {
    const { page, logs, close } = await launch(mode);
    try {
      // A hand-written link: the view, and the step to replay the (deterministic) training to.
      await page.goto(base + "#view=quantization&step=30");
      await waitForApp(page, logs);
      await page.waitForFunction(() => document.getElementById("status").dataset.view === "quantization", null, { timeout: 30_000 });
      try {
        await waitForStep(page, 30);
      } catch (e) {
        throw new Error(`the link did not replay to step 30: ${JSON.stringify(await status(page))}\n${logs.join("\n")}`);
      }
      let s = await status(page);
      assert.equal(s.error, "", `error line: ${s.error}`);
      assert.equal(s.message, "", `message: ${s.message}`);
      assert.match(s.detail, /^epoch 1\/200 test_accuracy=[0-9.]+ .* layer1: bits=2 alpha=[0-9.]+ near_frac=[0-9.]+ mse=/, `detail: ${s.detail}`);

      // Playing trains: the step advances, frame after frame, for a few seconds.
      await page.focus("#the_canvas");
      await page.keyboard.press("Space");
      const t0 = Date.now();
      try {
        await page.waitForFunction(() => Number(document.getElementById("status").dataset.step) >= 38, null, { timeout: 30_000 });
      } catch (e) {
        throw new Error(`training did not advance while playing: ${JSON.stringify(await status(page))}`);
      }
      await page.waitForTimeout(Math.max(0, 3000 - (Date.now() - t0)));
      const played = await status(page);
      const secs = (Date.now() - t0) / 1000;
      assert.equal(played.view, "quantization");
      assert.ok(played.step >= 38, `step went back to ${played.step}`);
      t.diagnostic(`${mode}: quantization ${played.frameMs.toFixed(1)} ms/frame, ${played.stepsPerS.toFixed(0)} minibatches/s, ${played.step - 30} minibatches in ${secs.toFixed(1)} s`);
      console.log(`PERF quantization ${mode}: frame_ms=${played.frameMs.toFixed(2)} steps_per_s=${played.stepsPerS.toFixed(0)} minibatches=${played.step - 30} secs=${secs.toFixed(1)}`);

      // The canvas is not blank.
      const distinct = distinctBytes(await page.locator("#the_canvas").screenshot());
      assert.ok(distinct > 50, `the canvas looks blank (${distinct} distinct byte values in its screenshot)`);

      // Pause, then the view's own link retrains a fresh page to the same step and the same numbers.
      await page.keyboard.press("Space");
      let before = await status(page);
      for (;;) {
        await page.waitForTimeout(300);
        const now = await status(page);
        if (now.step === before.step) break;
        before = now;
      }
      assert.ok(before.link?.includes("#s="), `no share link: ${before.link}`);
      const other = await page.context().newPage();
      await other.goto(before.link);
      await waitForApp(other, logs);
      await waitForStep(other, before.step, 90_000);
      const after = await status(other);
      assert.equal(after.view, "quantization");
      assert.equal(after.detail, before.detail, "the link's run differs from the original");
      await other.close();

      // A hand-written ProxGen link (full precision, the l1/2 penalty) trains one epoch (23
      // minibatches) and reports exact zeros per layer.
      const prox = await page.context().newPage();
      await prox.goto(base + "#view=quantization&method=none&optimizer=proxgen&regularizer=l1/2&penalty=0.001&step=23");
      await waitForApp(prox, logs);
      await waitForStep(prox, 23, 90_000);
      const p = await status(prox);
      assert.equal(p.error, "", `error line: ${p.error}`);
      assert.match(p.detail, /^epoch 1\/200 test_accuracy=[0-9.]+ .* layer1: bits=32 .* zeros=0\.[0-9]+/, `ProxGen detail: ${p.detail}`);
      await prox.close();

      // A hand-written MeZO link trains one epoch from forward passes alone.
      const mezo = await page.context().newPage();
      await mezo.goto(base + "#view=quantization&method=none&optimizer=mezo&lr=0.01&step=23");
      await waitForApp(mezo, logs);
      await waitForStep(mezo, 23, 90_000);
      const z = await status(mezo);
      assert.equal(z.error, "", `error line: ${z.error}`);
      assert.match(z.detail, /^epoch 1\/200 test_accuracy=[0-9.]+ /, `MeZO detail: ${z.detail}`);
      await mezo.close();

      // MeZO on a landscape: the preset plays and its runs step.
      const land = await page.context().newPage();
      await land.goto(base + "#preset=mezo-quadratic&speed=50");
      await waitForApp(land, logs);
      await land.focus("#the_canvas");
      await land.keyboard.press("Space");
      await land.waitForFunction(() => Number(document.getElementById("status").dataset.step) >= 20, null, { timeout: 60_000 });
      const l = await status(land);
      assert.equal(l.error, "", `error line: ${l.error}`);
      await land.close();
    } finally {
      await close();
    }
  });
}

for (const mode of Object.keys(MODES)) {
  test(`alignment lab in headless Chromium, ${mode}`, async (t) => {
    const { page, logs, close } = await launch(mode);
    try {
      // A hand-written link to `optiscope align --preset rich-features --seed 2`, two rounds in.
      await page.goto(base + "#align=rich-features&seed=2&step=2");
      await waitForApp(page, logs);
      await page.waitForFunction(() => document.getElementById("status").dataset.view === "align", null, { timeout: 30_000 });
      await waitForStep(page, 2, 60_000);
      let s = await status(page);
      assert.equal(s.error, "", `error line: ${s.error}`);
      assert.equal(s.preset, "rich-features");
      assert.match(s.compute, MODES[mode].compute, `compute path (${mode}): ${s.compute}`);

      // The step key and playing advance the round counter to the end (9 rounds of 3 runs).
      await page.focus("#the_canvas");
      await page.keyboard.press("s");
      await waitForStep(page, 3, 30_000);
      await page.keyboard.press("Space");
      const t0 = Date.now();
      await waitForStep(page, 9, 60_000);
      s = await status(page);
      t.diagnostic(`${mode}: alignment, 6 rounds in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      assert.match(s.detail, /^offline kl=0\.[0-9]+; on-policy-T4 kl=0\.[0-9]+; on-policy-T4-reward-distillation kl=0\.[0-9]+$/, `detail: ${s.detail}`);
      const distinct = distinctBytes(await page.locator("#the_canvas").screenshot());
      assert.ok(distinct > 50, `the canvas looks blank (${distinct} distinct byte values in its screenshot)`);

      // Its link replays a fresh page to the same numbers.
      assert.ok(s.link?.includes("#s="), `no share link: ${s.link}`);
      const other = await page.context().newPage();
      await other.goto(s.link);
      await waitForApp(other, logs);
      await waitForStep(other, 9, 60_000);
      assert.equal((await status(other)).detail, s.detail, "the link's runs differ from the original");
      await other.close();

      // Another kind: GRPO steps one run at a time.
      const grpo = await page.context().newPage();
      await grpo.goto(base + "#align=grpo&step=2");
      await waitForApp(grpo, logs);
      await waitForStep(grpo, 2, 60_000);
      const g = await status(grpo);
      assert.equal(g.error, "", `error line: ${g.error}`);
      assert.match(g.detail, /^grpo-kl=0\.2 objective=[-0-9.e]+; grpo-kl=0\.04 objective=/, `GRPO detail: ${g.detail}`);
      await grpo.close();
    } finally {
      await close();
    }
  });
}

for (const mode of Object.keys(MODES)) {
  test(`compression lab in headless Chromium, ${mode}`, async (t) => {
    const { page, logs, close } = await launch(mode);
    try {
      // TEDDY: a hand-written link, 40 steps in (the whole graph's GCN and the first grid point
      // trained, 20 steps of 10 epochs each), the graph drawn at 30 % of the edges removed.
      await page.goto(base + "#compress=teddy&edges=0.3&step=40");
      await waitForApp(page, logs);
      await page.waitForFunction(() => document.getElementById("status").dataset.view === "compress-teddy", null, { timeout: 30_000 });
      await waitForStep(page, 40, 90_000);
      let s = await status(page);
      assert.equal(s.error, "", `error line: ${s.error}`);
      assert.equal(s.preset, "sbm");
      assert.match(s.compute, MODES[mode].compute, `compute path (${mode}): ${s.compute}`);
      // 30 % of the SBM's 1284 edges: 385 removed, 899 kept.
      assert.match(s.detail, /^teddy edges=0\.30 kept=899 isolated=[0-9]+ trained=2\/28$/, `detail: ${s.detail}`);
      const distinct = distinctBytes(await page.locator("#the_canvas").screenshot());
      assert.ok(distinct > 50, `the canvas looks blank (${distinct} distinct byte values in its screenshot)`);
      // The step key trains on; playing trains the next grid point.
      await page.focus("#the_canvas");
      await page.keyboard.press("s");
      await waitForStep(page, 41, 30_000);
      await page.keyboard.press("Space");
      await page.waitForFunction(() => Number(document.getElementById("status").dataset.step) >= 60, null, { timeout: 90_000 });
      await page.keyboard.press("Space");
      await page.waitForTimeout(1_000);
      s = await status(page);
      assert.match(s.detail, /trained=[3-9]\/28$/, `detail after playing: ${s.detail}`);
      // Its link reopens a fresh page on the same graph and the same trained points.
      const link = s.link;
      assert.ok(link?.includes("#s="), `no share link: ${link}`);
      const other = await page.context().newPage();
      await other.goto(link);
      await waitForApp(other, logs);
      await waitForStep(other, s.step, 90_000);
      assert.equal((await status(other)).detail.split(" trained=")[0], s.detail.split(" trained=")[0]);
      await other.close();

      // MoE → dense: every scorer's pre-distillation error at once; 40 steps distil the first
      // scorer (frequency) to the end; its link replays a fresh page to the same numbers.
      const moe = await page.context().newPage();
      await moe.goto(base + "#compress=moe&step=40");
      await waitForApp(moe, logs);
      await waitForStep(moe, 40, 90_000);
      const m = await status(moe);
      assert.equal(m.error, "", `error line: ${m.error}`);
      assert.equal(m.view, "compress-moe");
      assert.match(m.detail, /^frequency \[0, 1, 2, 3\] pre=0\.[0-9]{4} post=0\.[0-9]{4}; gate-mass \[[0-9, ]+\] pre=0\.[0-9]{4} post=-; /, `MoE detail: ${m.detail}`);
      assert.match(m.detail, /; diversity \[[0-9, ]+\] pre=0\.[0-9]{4} post=-$/, `MoE detail: ${m.detail}`);
      const again = await page.context().newPage();
      await again.goto(m.link);
      await waitForApp(again, logs);
      await waitForStep(again, 40, 90_000);
      assert.equal((await status(again)).detail, m.detail, "the MoE link's numbers differ");
      t.diagnostic(`${mode}: ${m.detail.split("; ")[0]}`);
      await again.close();
      await moe.close();
    } finally {
      await close();
    }
  });
}

// The Transformer lab's `data-detail`: `device=gpu|cpu tokens_per_s=N; NAME step=N train0=L
// train=L val=L evals=N sample=N; ...`.
function transformerRuns(detail) {
  const [head, ...runs] = detail.split("; ");
  const m = head.match(/^device=(gpu|cpu) tokens_per_s=([0-9]+)$/);
  assert.ok(m, `detail: ${detail}`);
  return {
    device: m[1], tokensPerS: Number(m[2]),
    runs: runs.map((r) => {
      const f = r.match(/^(\S+) step=([0-9]+) train0=(\S+) train=(\S+) val=(\S+) evals=([0-9]+) sample=([0-9]+)$/);
      assert.ok(f, `run detail: ${r}`);
      return { name: f[1], step: Number(f[2]), train0: Number(f[3]), train: Number(f[4]), val: Number(f[5]),
               evals: Number(f[6]), sample: Number(f[7]) };
    }),
  };
}

for (const mode of Object.keys(MODES)) {
  test(`transformer lab in headless Chromium, ${mode}`, async (t) => {
    const { page, logs, close } = await launch(mode);
    try {
      const t0 = Date.now();
      await page.goto(base + "#transformer=adamw,muon&step=10&eval=20");
      await waitForApp(page, logs);
      await page.waitForFunction(() => document.getElementById("status").dataset.view === "transformer", null, { timeout: 60_000 });
      await waitForStep(page, 10, 240_000);
      const tReplay = Date.now();
      let s = await status(page);
      assert.equal(s.error, "", `error line: ${s.error}`);
      assert.match(s.compute, MODES[mode].compute, `compute path (${mode}): ${s.compute}`);
      let d = transformerRuns(s.detail);
      assert.equal(d.device, mode === "webgpu" ? "gpu" : "cpu", `device: ${s.detail}`);
      assert.deepEqual(d.runs.map((r) => r.name), ["adamw", "muon"]);
      // One initialisation, one batch: the first logged losses agree (to the detail's 4 digits,
      // and to ln 65 ≈ 4.17 within 0.2).
      await page.waitForFunction(() => !document.getElementById("status").dataset.detail.includes("train0=-"), null, { timeout: 60_000 });
      d = transformerRuns((await status(page)).detail);
      assert.equal(d.runs[0].train0, d.runs[1].train0, `first losses: ${s.detail}`);
      assert.ok(Math.abs(d.runs[0].train0 - Math.log(65)) < 0.2, `first loss ${d.runs[0].train0}`);
      const distinct = distinctBytes(await page.locator("#the_canvas").screenshot());
      assert.ok(distinct > 50, `the canvas looks blank (${distinct} distinct byte values in its screenshot)`);
      // Playing trains both runs; the loss falls. (SwiftShader's WebGPU is a software device on
      // two shared cores: slow, so the test plays 30 steps.)
      await page.focus("#the_canvas");
      await page.keyboard.press("Space");
      await page.waitForFunction(() => Number(document.getElementById("status").dataset.step) >= 40, null, { timeout: 300_000 });
      const tPlayed = Date.now();
      s = await status(page);
      d = transformerRuns(s.detail);
      for (const r of d.runs) {
        assert.ok(r.train < r.train0 - 0.2, `${r.name}: the loss did not fall (${r.train0} -> ${r.train})`);
        assert.ok(r.evals >= 2, `${r.name}: no evaluation after step 0 (every 20 steps): ${s.detail}`);
      }
      assert.ok(d.tokensPerS > 0, `tokens/s: ${s.detail}`);
      t.diagnostic(`${mode}: ${d.tokensPerS} training tokens/s (2 runs, batch 8 x context 32, since play) at step ${s.step}; ` +
        `opened and replayed 10 steps in ${(tReplay - t0) / 1e3} s, played to 40 in ${(tPlayed - tReplay) / 1e3} s; ${s.detail}`);
      // Hidden pages do not train.
      await page.evaluate(() => {
        Object.defineProperty(document, "hidden", { value: true, configurable: true });
        document.dispatchEvent(new Event("visibilitychange"));
      });
      await page.waitForTimeout(1_000);
      const hiddenAt = (await status(page)).step;
      await page.waitForTimeout(2_000);
      assert.equal((await status(page)).step, hiddenAt, "the lab trained while the page was hidden");
      await page.evaluate(() => { delete document.hidden; document.dispatchEvent(new Event("visibilitychange")); });
      await page.waitForFunction((n) => Number(document.getElementById("status").dataset.step) > n, hiddenAt, { timeout: 120_000 });
      await page.keyboard.press("Space");
    } finally {
      await close();
    }
  });
}
