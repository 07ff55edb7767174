// The customer portal: prices the quantities typed in a contract's form, live, through the
// portal's quote endpoint (the server runs `quote amend`'s code; nothing is priced here); then
// makes the amendment's PDF, and signs it (name, e-mail, acceptance), which applies it.
'use strict';
(function () {
  const token = document.body.dataset.token;
  const lang = document.body.dataset.lang === 'en' ? 'en' : 'pt-BR';
  const base = '/portal/' + encodeURIComponent(token);
  const words = {
    'pt-BR': { product: 'Produto', change: 'Alteração', unit: 'Preço proporcional', total: 'Total',
      from: 'De', to: 'até', totals: 'Total a pagar', wait: 'Calculando…', failed: 'Não foi possível concluir.',
      applied: 'Aditivo assinado e aplicado', invoice: 'Fatura nº', event: 'registro' },
    en: { product: 'Product', change: 'Change', unit: 'Prorated price', total: 'Total',
      from: 'From', to: 'to', totals: 'Total due', wait: 'Pricing…', failed: 'This could not be done.',
      applied: 'Amendment signed and applied', invoice: 'Invoice no.', event: 'event' },
  }[lang];

  // An exact decimal string ("1234.50") as people read it, by string operations only.
  function money(text, currency) {
    const negative = text.startsWith('-');
    const [int, frac] = (negative ? text.slice(1) : text).split('.');
    const group = lang === 'en' ? ',' : '.';
    const point = lang === 'en' ? '.' : ',';
    let grouped = '';
    for (let i = 0; i < int.length; i++) {
      if (i > 0 && (int.length - i) % 3 === 0) grouped += group;
      grouped += int[i];
    }
    return (negative ? '-' : '') + currency + ' ' + grouped + (frac ? point + frac : '');
  }

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // POSTs JSON; answers [ok, body] (body.error.message on a refusal).
  async function post(path, body) {
    try {
      const answer = await fetch(path, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      });
      return [answer.ok, await answer.json()];
    } catch (e) {
      return [false, {}];
    }
  }

  function message(body) {
    return (body && body.error && body.error.message) || words.failed;
  }

  function show(form, out, quote) {
    out.replaceChildren();
    out.append(el('p', 'period', words.from + ' ' + quote.effective + ' ' + words.to + ' ' + (quote.end || '')));
    const table = el('table', 'lines');
    const head = el('tr');
    for (const h of [words.product, words.change, words.unit, words.total]) head.append(el('th', null, h));
    table.append(el('thead')); table.tHead.append(head);
    const body = el('tbody');
    for (const l of quote.lines) {
      const row = el('tr');
      row.dataset.product = l.product_id;
      const input = form.querySelector(`input[name="${CSS.escape(l.product_id)}"]`);
      row.append(el('td', null, (input && input.dataset.name) || l.product_id));
      row.append(el('td', 'num', (l.effective_quantity.startsWith('-') ? '' : '+') + l.effective_quantity));
      row.append(el('td', 'num', money(l.prorated_unit_price, l.currency)));
      row.append(el('td', 'num net', money(l.net_total, l.currency)));
      body.append(row);
    }
    table.append(body);
    out.append(table);
    for (const t of quote.totals) {
      const p = el('p', 'total', words.totals + ': ' + money(t.total, t.currency));
      p.dataset.currency = t.currency;
      p.dataset.amount = t.total;
      out.append(p);
    }
  }

  function attach(form) {
    const out = form.querySelector('.quote');
    const prepare = form.querySelector('button.prepare');
    const signing = form.querySelector('div.sign');
    const result = form.querySelector('.result');
    let timer = null;
    let asked = 0;
    let items = [];
    function wanted() {
      const list = [];
      for (const input of form.querySelectorAll('input[type=number]')) {
        const value = input.value.trim();
        if (value === '' || value === input.dataset.held) continue;
        const quantity = Number(value);
        list.push({ product: input.name, quantity: Number.isSafeInteger(quantity) ? quantity : -1 });
      }
      return list;
    }
    async function price() {
      items = wanted();
      const mine = ++asked;
      prepare.hidden = true;
      signing.hidden = true;
      result.replaceChildren();
      if (items.length === 0) { out.replaceChildren(); return; }
      out.replaceChildren(el('p', 'hint', words.wait));
      const [ok, quote] = await post(base + '/quote', { contract: form.dataset.contract, items });
      if (mine !== asked) return;
      if (!ok) { out.replaceChildren(el('p', 'error', message(quote))); return; }
      show(form, out, quote);
      prepare.hidden = false;
      form.dataset.priced = String(asked);
    }
    prepare.addEventListener('click', async () => {
      result.replaceChildren();
      const [ok, made] = await post(base + '/amendments?lang=' + lang, { contract: form.dataset.contract, items });
      if (!ok) { result.replaceChildren(el('p', 'error', message(made))); return; }
      form.dataset.amendment = made.id;
      form.dataset.sha256 = made.sha256;
      signing.querySelector('a.pdf').href = made.pdf;
      signing.hidden = false;
    });
    signing.querySelector('button.sign').addEventListener('click', async () => {
      const button = signing.querySelector('button.sign');
      button.disabled = true;
      const [ok, done] = await post(base + '/amendments/' + encodeURIComponent(form.dataset.amendment) + '/sign?lang=' + lang, {
        name: signing.querySelector('input[name=signer_name]').value,
        email: signing.querySelector('input[name=signer_email]').value,
        accept: signing.querySelector('input[name=accept]').checked,
        sha256: form.dataset.sha256,
      });
      if (!ok) { button.disabled = false; result.replaceChildren(el('p', 'error', message(done))); return; }
      const p = el('p', 'applied', words.applied + ' (' + words.event + ' ' + done.event + '). ');
      if (done.invoice) {
        const a = el('a', 'invoice', words.invoice + ' ' + done.invoice.number + ' (PDF)');
        a.href = done.invoice.pdf;
        a.target = '_blank';
        a.rel = 'noopener';
        p.append(a);
      }
      result.replaceChildren(p);
      signing.hidden = true;
      prepare.hidden = true;
      form.dataset.signed = done.id;
    });
    form.addEventListener('input', (e) => {
      if (!(e.target instanceof HTMLInputElement) || e.target.type !== 'number') return;
      clearTimeout(timer);
      timer = setTimeout(price, 250);
    });
    form.addEventListener('submit', (e) => { e.preventDefault(); price(); });
  }

  for (const form of document.querySelectorAll('form.amend')) attach(form);
})();
