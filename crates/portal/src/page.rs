//! The customer's page: server-rendered HTML in pt-BR or English, for a phone first; the
//! live prices come from `portal.js` (no inline script or style: the dashboard's CSP).

use crate::offer::{product_name, Contract};
use expansa_ledger::{Book, Date, Decimal, Locale, Money};

/// The page's words in one language.
struct Words {
    title: &'static str,
    contract: &'static str,
    term: &'static str,
    renewal: &'static str,
    evergreen: &'static str,
    ended: &'static str,
    product: &'static str,
    quantity: &'static str,
    unit_price: &'static str,
    mrr: &'static str,
    term_end: &'static str,
    add_title: &'static str,
    held: &'static str,
    recommended: &'static str,
    per_term: &'static str,
    quote_hint: &'static str,
    no_contracts: &'static str,
    invalid_link: &'static str,
    prepare: &'static str,
    view_pdf: &'static str,
    full_name: &'static str,
    email: &'static str,
    accept: &'static str,
    sign: &'static str,
}

const PT: Words = Words {
    title: "Sua assinatura",
    contract: "Contrato",
    term: "Vigência",
    renewal: "Renovação",
    evergreen: "sem data de término",
    ended: "encerrado",
    product: "Produto",
    quantity: "Quantidade",
    unit_price: "Preço unitário",
    mrr: "MRR",
    term_end: "Fim do período",
    add_title: "Adicionar a partir de hoje",
    held: "contratado",
    recommended: "recomendado para você",
    per_term: "por {n} meses",
    quote_hint: "Altere uma quantidade para ver o preço proporcional até o fim do contrato.",
    no_contracts: "Nenhum contrato encontrado.",
    invalid_link:
        "Este link não é válido: pode ter expirado ou sido revogado. Peça um novo ao seu contato.",
    prepare: "Gerar o aditivo",
    view_pdf: "Ver o aditivo (PDF)",
    full_name: "Nome completo",
    email: "E-mail",
    accept: "Li o aditivo e o aceito",
    sign: "Assinar e contratar",
};

const EN: Words = Words {
    title: "Your subscription",
    contract: "Contract",
    term: "Term",
    renewal: "Renewal",
    evergreen: "no end date",
    ended: "ended",
    product: "Product",
    quantity: "Quantity",
    unit_price: "Unit price",
    mrr: "MRR",
    term_end: "Term end",
    add_title: "Add from today",
    held: "held",
    recommended: "recommended for you",
    per_term: "per {n} months",
    quote_hint: "Change a quantity to see the prorated price to the contract's end.",
    no_contracts: "No contracts found.",
    invalid_link: "This link is not valid: it may have expired or been revoked. Ask your contact for a new one.",
    prepare: "Prepare the amendment",
    view_pdf: "View the amendment (PDF)",
    full_name: "Full name",
    email: "E-mail",
    accept: "I have read the amendment and accept it",
    sign: "Sign and order",
};

fn words(locale: Locale) -> &'static Words {
    match locale {
        Locale::PtBr => &PT,
        Locale::En => &EN,
    }
}

/// The page's language: `?lang=` (pt-BR, pt, en), else the first language of
/// `Accept-Language` it knows, else pt-BR.
pub fn locale(lang: Option<&str>, accept_language: Option<&str>) -> Locale {
    if let Some(l) = lang.and_then(Locale::from_posix) {
        return l;
    }
    accept_language
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(|part| part.split(';').next().unwrap_or_default().trim())
        .find_map(|tag| Locale::from_posix(&tag.replace('-', "_")).filter(|_| tag != "c"))
        .unwrap_or_default()
}

/// `text` with the characters HTML gives meaning to escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn head(locale: Locale, title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/portal/assets/portal.css\"></head>",
        locale.tag(),
        escape(title)
    )
}

/// The page a link that does not open (expired, revoked, forged) gets: nothing of anyone's.
pub fn invalid_link(locale: Locale) -> String {
    let w = words(locale);
    format!(
        "{}<body><main><p class=\"refused\">{}</p></main></body></html>\n",
        head(locale, w.title),
        w.invalid_link
    )
}

/// A quantity as written in the book, without trailing zeros.
fn quantity(q: Decimal) -> String {
    q.normalize().to_string()
}

/// The customer's page.
pub fn render(
    book: &Book,
    customer_id: &str,
    contracts: &[Contract],
    today: Date,
    token: &str,
    locale: Locale,
) -> String {
    let w = words(locale);
    let money = |amount: Decimal, currency| locale.money(Money::from_decimal(amount), currency);
    let customer_name = book
        .customers
        .ids
        .find(customer_id)
        .map(|c| book.customers.name.get(c as usize).to_string())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| customer_id.to_string());
    let mut out = head(locale, w.title);
    out.push_str(&format!(
        "<body data-token=\"{}\" data-lang=\"{}\"><main><h1>{}</h1><p class=\"customer\">{}</p>\
         <nav class=\"lang\"><a href=\"?lang=pt-BR\">Português</a> · <a href=\"?lang=en\">English</a></nav>",
        escape(token),
        locale.tag(),
        w.title,
        escape(&customer_name),
    ));
    if contracts.is_empty() {
        out.push_str(&format!("<p>{}</p>", w.no_contracts));
    }
    let reporting = book.currency();
    for c in contracts {
        let v = &c.view;
        let renewal = match v.end {
            None => w.evergreen.to_string(),
            Some(end) if end < today => format!("{} ({end})", w.ended),
            Some(end) => end.tomorrow().map_or(end.to_string(), |d| d.to_string()),
        };
        out.push_str(&format!(
            "<section class=\"contract\" data-contract=\"{id}\"><h2>{} {id}</h2>\
             <dl><dt>{}</dt><dd>{} – {}</dd><dt>{}</dt><dd class=\"renewal\">{}</dd><dt>{}</dt><dd>{}</dd></dl>",
            w.contract,
            w.term,
            v.start,
            v.end.map_or(w.evergreen.to_string(), |e| e.to_string()),
            w.renewal,
            escape(&renewal),
            w.mrr,
            locale.money(v.mrr, reporting),
            id = escape(&v.id),
        ));
        out.push_str(&format!(
            "<table class=\"held\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            w.product, w.quantity, w.unit_price, w.mrr, w.term_end
        ));
        for h in &v.lines {
            out.push_str(&format!(
                "<tr data-product=\"{}\"><td data-label=\"{}\">{}</td><td class=\"num\" data-label=\"{}\">{}</td>\
                 <td class=\"num\" data-label=\"{}\">{} <small>{}</small></td>\
                 <td class=\"num\" data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td></tr>",
                escape(&h.product_id),
                w.product,
                escape(&product_name(book, &h.product_id)),
                w.quantity,
                quantity(h.quantity),
                w.unit_price,
                money(h.term_unit_price, h.currency),
                w.per_term.replace("{n}", &h.price_term_months.to_string()),
                w.mrr,
                locale.money(h.mrr, reporting),
                w.term_end,
                h.end.or(v.end).map_or(w.evergreen.to_string(), |e| e.to_string()),
            ));
        }
        out.push_str("</tbody></table>");
        if c.open && !c.addable.is_empty() {
            out.push_str(&format!(
                "<form class=\"amend\" data-contract=\"{}\"><h3>{}</h3>",
                escape(&v.id),
                w.add_title
            ));
            for a in &c.addable {
                let tag = if a.held.is_zero() {
                    w.recommended
                } else {
                    w.held
                };
                out.push_str(&format!(
                    "<label class=\"item\"><span class=\"name\">{} <small>({tag}; {} {})</small></span>\
                     <input type=\"number\" inputmode=\"numeric\" name=\"{}\" data-name=\"{}\" min=\"{held}\" max=\"{}\" step=\"1\" value=\"{held}\" data-held=\"{held}\"></label>",
                    escape(&a.name),
                    money(a.unit_price, a.currency),
                    w.per_term.replace("{n}", &a.price_term_months.to_string()),
                    escape(&a.product_id),
                    escape(&a.name),
                    crate::offer::MAX_QUANTITY,
                    held = quantity(a.held),
                ));
            }
            out.push_str(&format!(
                "<div class=\"quote\" aria-live=\"polite\"><p class=\"hint\">{}</p></div>\
                 <div class=\"document\"><button type=\"button\" class=\"prepare\" hidden>{}</button>\
                 <div class=\"sign\" hidden><p><a class=\"pdf\" target=\"_blank\" rel=\"noopener\">{}</a></p>\
                 <label>{} <input type=\"text\" name=\"signer_name\" autocomplete=\"name\" maxlength=\"{}\"></label>\
                 <label>{} <input type=\"email\" name=\"signer_email\" autocomplete=\"email\" maxlength=\"{}\"></label>\
                 <label class=\"accept\"><input type=\"checkbox\" name=\"accept\"> {}</label>\
                 <button type=\"button\" class=\"sign\">{}</button></div>\
                 <div class=\"result\" aria-live=\"polite\"></div></div></form>",
                w.quote_hint,
                w.prepare,
                w.view_pdf,
                w.full_name,
                crate::sign::MAX_NAME,
                w.email,
                crate::sign::MAX_EMAIL,
                w.accept,
                w.sign,
            ));
        }
        out.push_str("</section>");
    }
    out.push_str("</main><script src=\"/portal/assets/portal.js\"></script></body></html>\n");
    out
}
