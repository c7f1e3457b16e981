// Shared by every page: navigation, the model selector, API calls, token colouring,
// tooltips and glossary definitions on hover.
'use strict';
const ML = {
  params: new URLSearchParams(location.search),
  model() { return this.params.get('model') || ''; },
  url(page, extra) {
    const p = new URLSearchParams(extra || {});
    if (this.model() && !p.has('model')) p.set('model', this.model());
    const s = p.toString();
    return page + (s ? '?' + s : '');
  },
  async get(path) {
    const sep = path.includes('?') ? '&' : '?';
    const r = await fetch(this.model() ? path + sep + 'model=' + encodeURIComponent(this.model()) : path);
    const j = await r.json();
    if (!r.ok) throw new Error(j.error || ('HTTP ' + r.status));
    return j;
  },
  async post(path, body) {
    if (this.model()) body.model = this.model();
    const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const j = await r.json();
    if (!r.ok) throw new Error(j.error || ('HTTP ' + r.status));
    return j;
  },
  el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  },
  fmt(v, d = 4) { return v == null ? '–' : Number(v).toFixed(d); },
  // How a token is shown: newlines and tabs made visible.
  show(t) { return t.replace(/\n/g, '↵').replace(/\t/g, '⇥'); },
  // Orange for positive activations, blue for negative, by |v| / scale.
  colour(v, scale) {
    const a = scale > 0 ? Math.min(1, Math.abs(v) / scale) : 0;
    return v >= 0 ? `rgba(234, 88, 12, ${a.toFixed(3)})` : `rgba(37, 99, 235, ${a.toFixed(3)})`;
  },
  tokenSpan(tok, v, scale) {
    const s = this.el('span', { class: 'tok', text: this.show(tok) });
    s.style.background = this.colour(v, scale);
    s.dataset.act = String(v);
    s.title = `${JSON.stringify(tok)}: ${Number(v).toFixed(4)}`;
    return s;
  },
  error(msg) {
    const e = document.getElementById('error');
    if (!e) return;
    e.textContent = msg || '';
    e.classList.toggle('show', !!msg);
  },
  tooltip(text, ev) {
    let t = document.getElementById('tooltip');
    if (!t) { t = this.el('div', { id: 'tooltip' }); document.body.append(t); }
    if (!text) { t.style.display = 'none'; return; }
    t.textContent = text;
    t.style.display = 'block';
    t.style.left = (ev.clientX + 12) + 'px';
    t.style.top = (ev.clientY + 12) + 'px';
  },
  async nav(active) {
    const pages = [['index.html', 'Model'], ['neuron.html', 'Neurons'], ['probe.html', 'Live probe'],
                   ['attention.html', 'Attention'], ['lens.html', 'Logit lens'], ['runs.html', 'Runs'],
                   ['problems.html', 'Problems'], ['glossary.html', 'Glossary']];
    const h = this.el('header', { class: 'nav' }, this.el('span', { class: 'brand', text: 'mechlens' }));
    for (const [p, name] of pages) h.append(this.el('a', { href: this.url(p), class: p === active ? 'active' : '', text: name }));
    const sel = this.el('select', { id: 'model-select', title: 'model' });
    h.append(sel);
    document.body.prepend(h);
    try {
      const models = await fetch('/api/models').then(r => r.json());
      const cur = this.model() || (models[0] && models[0].id);
      for (const m of models) {
        const o = this.el('option', { value: m.id, text: m.label + (m.has_index ? ' · indexed' : '') });
        if (m.id === cur) o.selected = true;
        sel.append(o);
      }
      sel.addEventListener('change', () => {
        const p = new URLSearchParams(location.search);
        p.set('model', sel.value);
        location.search = p.toString();
      });
    } catch (e) { /* the page shows its own errors */ }
    try { this.info = await this.get('/api/model'); } catch (e) { this.info = null; }
    this.glossary();
  },
  // Wraps glossary terms in [data-gloss] elements in <abbr> with the definition as title.
  async glossary(root) {
    if (!this._gloss) this._gloss = await fetch('glossary.json').then(r => r.json()).catch(() => []);
    const terms = this._gloss.slice().sort((a, b) => b.term.length - a.term.length);
    if (!terms.length) return;
    const esc = s => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const re = new RegExp('\\b(' + terms.map(t => esc(t.term)).join('|') + ')(s?)\\b', 'gi');
    const def = new Map(terms.map(t => [t.term.toLowerCase(), t.definition]));
    const scopes = root ? [root] : document.querySelectorAll('[data-gloss]');
    for (const scope of scopes) {
      const walker = document.createTreeWalker(scope, NodeFilter.SHOW_TEXT, {
        acceptNode: n => n.parentElement.closest('abbr,script,style,.tok,textarea,code,pre,a,select,option')
          ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT });
      const nodes = [];
      while (walker.nextNode()) nodes.push(walker.currentNode);
      for (const n of nodes) {
        const text = n.nodeValue;
        re.lastIndex = 0;
        if (!re.test(text)) continue;
        re.lastIndex = 0;
        const frag = document.createDocumentFragment();
        let last = 0, m;
        while ((m = re.exec(text))) {
          frag.append(text.slice(last, m.index));
          frag.append(this.el('abbr', { class: 'gloss', title: def.get(m[1].toLowerCase()), text: m[0] }));
          last = m.index + m[0].length;
        }
        frag.append(text.slice(last));
        n.replaceWith(frag);
      }
    }
  },
  // The prompt of a textarea as a request body: text, or token ids for a model without
  // a tokenizer (the training lab's algorithmic models), whose textarea then starts with
  // <BOS-ish 0> + 12 random ids repeated twice.
  prompt(area) {
    if (!this.info || this.info.has_tokenizer) return { text: area.value };
    const ids = area.value.split(/[\s,]+/).filter(x => x !== '').map(Number);
    return { tokens: ids };
  },
  tokenPrompt(area) {
    if (!this.info || this.info.has_tokenizer || area.dataset.ids) return;
    const v = this.info.d_vocab, r = [];
    for (let i = 0; i < 12; i++) r.push(1 + Math.floor(Math.random() * (v - 1)));
    area.value = [0, ...r, ...r].join(' ');
    area.dataset.ids = '1';
    area.before(this.el('p', { class: 'muted', text: `This model has no tokenizer: type token ids (0–${v - 1}), separated by spaces.` }));
  },
  debounce(fn, ms) { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; },
};
