// The customer portal: prices the quantities typed in a contract's form, live, through the
// portal's quote endpoint (the server runs `quote amend`'s code; nothing is priced here).
'use strict';
(function () {
  const token = document.body.dataset.token;
  const lang = document.body.dataset.lang === 'en' ? 'en' : 'pt-BR';
  const words = {
    'pt-BR': { product: 'Produto', change: 'Alteração', unit: 'Preço proporcional', total: 'Total',
      from: 'De', to: 'até', totals: 'Total a pagar', wait: 'Calculando…', failed: 'Não foi possível calcular o preço.' },
    en: { product: 'Product', change: 'Change', unit: 'Prorated price', total: 'Total',
      from: 'From', to: 'to', totals: 'Total due', wait: 'Pricing…', failed: 'The price could not be computed.' },
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

  function show(form, out, quote) {
    out.replaceChildren();
    const period = el('p', 'period', words.from + ' ' + quote.effective + ' ' + words.to + ' ' + (quote.end || ''));
    out.append(period);
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
    let timer = null;
    let asked = 0;
    async function price() {
      const items = [];
      for (const input of form.querySelectorAll('input[type=number]')) {
        const value = input.value.trim();
        if (value === '' || value === input.dataset.held) continue;
        const quantity = Number(value);
        items.push({ product: input.name, quantity: Number.isSafeInteger(quantity) ? quantity : -1 });
      }
      const mine = ++asked;
      if (items.length === 0) { out.replaceChildren(); return; }
      out.replaceChildren(el('p', 'hint', words.wait));
      let answer;
      let quote;
      try {
        answer = await fetch('/portal/' + encodeURIComponent(token) + '/quote', {
          method: 'POST', headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ contract: form.dataset.contract, items }),
        });
        quote = await answer.json();
      } catch (e) {
        if (mine === asked) out.replaceChildren(el('p', 'error', words.failed));
        return;
      }
      if (mine !== asked) return;
      if (!answer.ok) {
        out.replaceChildren(el('p', 'error', (quote.error && quote.error.message) || words.failed));
        return;
      }
      show(form, out, quote);
      form.dataset.priced = String(asked);
    }
    form.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(price, 250); });
    form.addEventListener('submit', (e) => { e.preventDefault(); price(); });
  }

  for (const form of document.querySelectorAll('form.amend')) attach(form);
})();
