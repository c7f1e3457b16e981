// The explorer's pages in a real browser: coloured tokens match the API, the live
// probe follows typing, the attention viewer and runs page render, no console errors.
'use strict';
const { chromium } = require(process.env.PLAYWRIGHT_CORE);
const BASE = process.env.BASE, OUT = process.env.ARTIFACTS;
let failures = 0;
const check = (ok, what) => { if (!ok) { failures++; console.log('FAIL: ' + what); } else console.log('ok: ' + what); };
const close = (a, b) => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));

(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
                                          args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', e => errors.push(String(e)));
  const api = async (path, body) => {
    const r = await fetch(BASE + path, body ? { method: 'POST', body: JSON.stringify(body) } : {});
    return r.json();
  };

  // Neuron page: the tokens and their values are those of the API.
  const want = await api('/api/neuron/1/5');
  await page.goto(BASE + '/neuron.html?layer=1&index=5');
  await page.waitForSelector('.example .tok');
  const nEx = await page.locator('.example').count();
  check(nEx === want.examples.length, `neuron page shows ${nEx} examples (API ${want.examples.length})`);
  const first = want.examples[0];
  const shown = await page.locator('.example').first().locator('.tok').evaluateAll(els => els.map(e => [+e.dataset.pos, +e.dataset.act]));
  const lo = Math.max(0, first.pos - 24), hi = Math.min(first.tokens.length, first.pos + 8);
  check(shown.length === hi - lo, `truncated example shows ${shown.length} tokens around the max (want ${hi - lo})`);
  check(shown.every(([p, v]) => close(v, first.acts[p])), 'truncated example values equal the API');
  await page.locator('.example').first().locator('button').click();
  const full = await page.locator('.example').first().locator('.tok').evaluateAll(els => els.map(e => +e.dataset.act));
  check(full.length === first.tokens.length, `expanded example shows all ${full.length} tokens`);
  check(full.every((v, i) => close(v, first.acts[i])), 'expanded example values equal the API');
  const maxTok = await page.locator('.example').first().locator('.tok.max').getAttribute('data-pos');
  check(+maxTok === first.pos, 'the max token is outlined');
  const bg = await page.locator('.example').first().locator('.tok.max').evaluate(e => getComputedStyle(e).backgroundColor);
  check(/rgba?\(/.test(bg) && bg !== 'rgba(0, 0, 0, 0)', `tokens are coloured (${bg})`);
  check((await page.locator('#hist rect').count()) === want.histogram.counts.length, 'histogram has one bar per bin');
  check((await page.locator('#top li').count()) === want.logit_effects.top.length, 'logit effects listed');
  await page.screenshot({ path: OUT + '/neuron.png', fullPage: true });

  // Live probe: typing changes the values, and they are the API's for that text.
  await page.goto(BASE + '/probe.html?layer=0&neuron=3');
  await page.waitForSelector('#tokens .tok');
  const before = await page.locator('#tokens .tok').evaluateAll(els => els.map(e => e.dataset.act).join(','));
  const text = 'The whale, the whale! Call me Ishmael.';
  await page.fill('#text', text);
  await page.waitForFunction(b => {
    const s = [...document.querySelectorAll('#tokens .tok')].map(e => e.dataset.act).join(',');
    return s && s !== b;
  }, before);
  const probe = await api('/api/probe', { text, layer: 0, neuron: 3 });
  const after = await page.locator('#tokens .tok').evaluateAll(els => els.map(e => +e.dataset.act));
  check(after.length === probe.acts.length && after.every((v, i) => close(v, probe.acts[i])), 'live probe values follow the typed text');
  await page.locator('#tokens .tok').nth(3).click();
  await page.waitForSelector('#top tr td a');
  check((await page.locator('#top tr td a').count()) > 0, 'clicking a token lists the neurons that fire most on it');
  await page.screenshot({ path: OUT + '/probe.png', fullPage: true });

  // Attention viewer: every layer and head drawn; hovering names the two tokens.
  const model = await api('/api/model');
  await page.goto(BASE + '/attention.html');
  await page.waitForSelector('.heads canvas');
  const nCanvas = await page.locator('.heads canvas').count();
  check(nCanvas === model.n_layers * model.n_heads, `attention viewer draws ${nCanvas} heads`);
  const c = page.locator('.heads canvas').first();
  const box = await c.boundingBox();
  await page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.8);
  const tip = await page.locator('#tooltip').textContent();
  check(/L0H0 .* → .*: \d/.test(tip || ''), `hover shows source and destination (${tip})`);
  check((await page.locator('#scores tr').count()) === model.n_layers * model.n_heads + 1, 'head score table');
  await page.screenshot({ path: OUT + '/attention.png', fullPage: true });

  // Logit lens.
  await page.goto(BASE + '/lens.html');
  await page.waitForSelector('#grid td');
  check((await page.locator('#grid tr').count()) === model.n_layers + 2, 'logit lens has a row per layer');
  await page.screenshot({ path: OUT + '/lens.png', fullPage: true });

  // Runs: curves and checkpoints that open in the other pages.
  await page.goto(BASE + '/runs.html?run=induction');
  await page.waitForSelector('.uplot');
  check((await page.locator('.uplot').count()) >= 1, 'runs page plots the curves');
  const link = page.locator('a.pill', { hasText: 'attention' }).last();
  check((await link.getAttribute('href')).includes('model=induction%40'), 'checkpoints link to the other pages');
  await page.screenshot({ path: OUT + '/runs.png', fullPage: true });
  await link.click();
  await page.waitForSelector('.heads canvas');
  check((await page.locator('.heads canvas').count()) === 2 * 4, 'a checkpoint opens in the attention viewer');

  // Model, problems, glossary; glossary terms carry their definitions.
  for (const p of ['index.html', 'problems.html', 'glossary.html']) {
    await page.goto(BASE + '/' + p);
    await page.waitForLoadState('networkidle');
    await page.screenshot({ path: OUT + '/' + p.replace('.html', '') + '.png', fullPage: true });
  }
  await page.goto(BASE + '/problems.html');
  await page.waitForSelector('abbr.gloss');
  check((await page.locator('abbr.gloss').count()) >= 10, 'glossary terms are marked on the problems page');
  check((await page.locator('abbr.gloss').first().getAttribute('title')).length > 20, 'a term has its definition on hover');

  check(errors.length === 0, 'no console errors' + (errors.length ? ': ' + errors.join(' | ') : ''));
  await browser.close();
  console.log(failures ? `${failures} browser check(s) failed` : 'browser checks: OK');
  process.exit(failures ? 1 : 0);
})().catch(e => { console.log('FAIL: ' + e.stack); process.exit(1); });
