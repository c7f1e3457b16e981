// Renders the README's explorer screenshots from a running explorer:
//   node scripts/explorer_screenshots.cjs http://127.0.0.1:8080 docs
// (playwright-core from third_party/npm, Debian's chromium).
'use strict';
const path = require('path');
const { chromium } = require(path.join(__dirname, '../third_party/npm/node_modules/playwright-core'));
const [BASE, OUT] = [process.argv[2] || 'http://127.0.0.1:8080', process.argv[3] || 'docs'];

(async () => {
  const models = await (await fetch(BASE + '/api/models')).json();
  const indexed = models.find(m => m.has_index);
  const attn = [...models].reverse().find(m => /attn-only/.test(m.id)) || models[0];
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const shot = async (url, name, wait, full, text) => {
    await page.goto(BASE + url);
    await page.waitForSelector(wait);
    if (text) {  // type a prompt, wait for the page to follow it
      await page.fill('#text', text);
      await page.waitForTimeout(800);
    }
    await page.waitForTimeout(300);
    await page.screenshot({ path: `${OUT}/explorer-${name}.png`, fullPage: !!full });
  };
  if (indexed) {
    // The neuron with the largest max activation among the first 64 of layer 0.
    let best = [0, -Infinity];
    for (let i = 0; i < 64; i++) {
      const n = await (await fetch(`${BASE}/api/neuron/0/${i}?model=${encodeURIComponent(indexed.id)}`)).json();
      if (n.max_act > best[1]) best = [i, n.max_act];
    }
    await shot(`/neuron.html?model=${encodeURIComponent(indexed.id)}&layer=0&index=${best[0]}`, 'neuron', '.example .tok', true);
    // The probe with the neuron's best example's text typed in.
    const n = await (await fetch(`${BASE}/api/neuron/0/${best[0]}?model=${encodeURIComponent(indexed.id)}`)).json();
    const text = n.examples[0].tokens.slice(1).join('').trim();
    await shot(`/probe.html?model=${encodeURIComponent(indexed.id)}&layer=0&neuron=${best[0]}`, 'probe', '#tokens .tok', false, text);
  }
  await shot(`/attention.html?model=${encodeURIComponent(attn.id)}&layer=1&head=0`, 'attention', '.heads canvas', true);
  await shot(`/lens.html?model=${encodeURIComponent(attn.id)}`, 'lens', '#grid td');
  await shot(`/runs.html?run=${encodeURIComponent(attn.run || '')}`, 'runs', '.uplot', true);
  await shot(`/?model=${encodeURIComponent(indexed ? indexed.id : models[0].id)}`, 'model', '#layers .example');
  await shot('/problems.html', 'problems', 'abbr.gloss');
  await shot('/glossary.html', 'glossary', '#terms dt');
  await browser.close();
})().catch(e => { console.error(e); process.exit(1); });
