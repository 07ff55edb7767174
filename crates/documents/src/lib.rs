//! Documents as PDF: the amendment a customer signs (docs/portal.md), laid out with printpdf
//! in the DejaVu Sans font the charts bundle (assets/fonts), so no system font is needed and
//! every character of a name or a product prints.
//!
//! The figures are the quote's own ([`expansa_contracts::Quote`], from `quote amend`'s code):
//! nothing is computed here but the layout and, for the "after" table, each product's
//! quantity held today plus the change the quote prices.

use expansa_contracts::{ContractView, Quote};
use expansa_ledger::{Currency, Decimal, Locale, Money};
use printpdf::{IndirectFontRef, Mm, PdfDocument, PdfDocumentReference, PdfLayerReference};

const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// A4, in millimetres, and the margins.
const WIDTH: f32 = 210.0;
const HEIGHT: f32 = 297.0;
const MARGIN: f32 = 18.0;
/// Characters of body text on one line (9 pt DejaVu Sans over the width between margins).
const WRAP: usize = 95;

/// Why a document could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the PDF could not be made: {0}")]
pub struct DocumentError(String);

/// The amendment of one contract, as the customer signs it.
pub struct Amendment<'a> {
    /// The vendor's name (`serve --vendor-name`).
    pub vendor: &'a str,
    pub customer_id: &'a str,
    pub customer_name: &'a str,
    /// The amendment's reference (its id in the store).
    pub reference: &'a str,
    /// When it was issued (UTC, RFC 3339).
    pub issued: &'a str,
    /// The contract as held on the effective day, before the amendment.
    pub before: &'a ContractView,
    /// The priced amendment.
    pub quote: &'a Quote,
    /// A product's display name by its id.
    pub product_name: &'a dyn Fn(&str) -> String,
    pub locale: Locale,
}

/// The words of the document in one language.
struct Words {
    title: &'static str,
    vendor: &'static str,
    customer: &'static str,
    contract: &'static str,
    reference: &'static str,
    issued: &'static str,
    period: &'static str,
    before: &'static str,
    after: &'static str,
    product: &'static str,
    quantity: &'static str,
    unit_price: &'static str,
    change: &'static str,
    multiplier: &'static str,
    prorated: &'static str,
    total: &'static str,
    totals: &'static str,
    terms_title: &'static str,
    terms: &'static str,
    invoice: &'static str,
    bills: &'static str,
    event: &'static str,
}

const PT: Words = Words {
    title: "Aditivo de contrato",
    vendor: "Fornecedor",
    customer: "Cliente",
    contract: "Contrato",
    reference: "Referência",
    issued: "Emitido em (UTC)",
    period: "Vigência do aditivo",
    before: "Itens contratados antes do aditivo",
    after: "Itens contratados depois do aditivo",
    product: "Produto",
    quantity: "Quantidade",
    unit_price: "Preço por período",
    change: "Alteração",
    multiplier: "Fator pro rata",
    prorated: "Preço proporcional",
    total: "Total",
    totals: "Total por moeda",
    terms_title: "Condições",
    terms:
        "O aditivo é coterminado com o contrato: cada item é cobrado do primeiro dia do aditivo \
        até o fim do contrato (ou do próprio item), pro rata de meses inteiros mais os dias \
        restantes x 12/365 sobre o período de preço do produto. Os itens já contratados mantêm \
        o preço travado do contrato; os novos, o preço contratado do cliente (ou o de lista). \
        Valores em moedas diferentes não são somados nem convertidos. As demais condições do \
        contrato permanecem em vigor. Reduções e cancelamentos são tratados com a nossa equipe.",
    invoice: "Fatura nº",
    bills: "Cobra o aditivo",
    event: "Evento no registro",
};

const EN: Words = Words {
    title: "Contract amendment",
    vendor: "Vendor",
    customer: "Customer",
    contract: "Contract",
    reference: "Reference",
    issued: "Issued (UTC)",
    period: "Amendment term",
    before: "Lines held before the amendment",
    after: "Lines held after the amendment",
    product: "Product",
    quantity: "Quantity",
    unit_price: "Price per term",
    change: "Change",
    multiplier: "Prorate factor",
    prorated: "Prorated price",
    total: "Total",
    totals: "Total per currency",
    terms_title: "Terms",
    terms: "The amendment is co-terminated with the contract: each line is charged from the \
        amendment's first day to the contract's end (or the line's own), prorated by whole \
        months plus the remaining days x 12/365 over the product's price term. Lines already \
        held keep the contract's locked price; new ones are at the customer's contracted price \
        (else the list price). Amounts in different currencies are neither added nor converted. \
        Every other term of the contract stays in force. Reductions and cancellations are made \
        with our team.",
    invoice: "Invoice no.",
    bills: "Bills the amendment",
    event: "Event in the log",
};

/// Lays text out on pages, top to bottom.
struct Writer {
    doc: PdfDocumentReference,
    font: IndirectFontRef,
    layer: PdfLayerReference,
    /// The baseline of the next line, from the page's bottom.
    y: f32,
}

impl Writer {
    fn new(title: &str, reference: &str) -> Result<Writer, DocumentError> {
        let (doc, page, layer) = PdfDocument::new(title, Mm(WIDTH), Mm(HEIGHT), "text");
        let doc = doc.with_document_id(reference.to_string());
        let font = doc
            .add_external_font(FONT)
            .map_err(|e| DocumentError(e.to_string()))?;
        let layer = doc.get_page(page).get_layer(layer);
        Ok(Writer {
            doc,
            font,
            layer,
            y: HEIGHT - MARGIN,
        })
    }

    /// Moves down `mm`, to a new page when the bottom margin is reached.
    fn down(&mut self, mm: f32) {
        self.y -= mm;
        if self.y < MARGIN {
            let (page, layer) = self.doc.add_page(Mm(WIDTH), Mm(HEIGHT), "text");
            self.layer = self.doc.get_page(page).get_layer(layer);
            self.y = HEIGHT - MARGIN;
        }
    }

    /// One line of cells, each at its distance from the left margin.
    fn row(&mut self, size: f32, cells: &[(f32, &str)]) {
        for (x, text) in cells {
            self.layer
                .use_text(*text, size, Mm(MARGIN + x), Mm(self.y), &self.font);
        }
        self.down(size * 0.5);
    }

    fn line(&mut self, size: f32, text: &str) {
        self.row(size, &[(0.0, text)]);
    }

    /// A paragraph, wrapped at word boundaries.
    fn paragraph(&mut self, size: f32, text: &str) {
        let mut line = String::new();
        for word in text.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > WRAP {
                self.line(size, &line);
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            self.line(size, &line);
        }
    }

    fn finish(self) -> Result<Vec<u8>, DocumentError> {
        self.doc
            .save_to_bytes()
            .map_err(|e| DocumentError(e.to_string()))
    }
}

/// A product held after the amendment: its quantity and price per term.
struct Holding {
    product: String,
    quantity: Decimal,
    price: Decimal,
    currency: Currency,
    term_months: u32,
}

/// A quantity as written in the book, without trailing zeros.
fn quantity(q: Decimal) -> String {
    q.normalize().to_string()
}

/// The amendment as a PDF: parties, the term, the lines before and after, each priced change
/// with its proration, the totals per currency, and the terms.
pub fn amendment_pdf(a: &Amendment) -> Result<Vec<u8>, DocumentError> {
    let w = match a.locale {
        Locale::PtBr => &PT,
        Locale::En => &EN,
    };
    let money =
        |amount: Decimal, currency: Currency| a.locale.money(Money::from_decimal(amount), currency);
    let q = a.quote;
    let mut out = Writer::new(&format!("{} {}", w.title, q.contract), a.reference)?;
    out.line(16.0, &format!("{} {}", w.title, q.contract));
    out.down(2.0);
    let end = q.end.map_or("-".into(), |d| d.to_string());
    for (label, value) in [
        (w.vendor, a.vendor.to_string()),
        (
            w.customer,
            format!("{} ({})", a.customer_name, a.customer_id),
        ),
        (w.contract, q.contract.clone()),
        (w.reference, a.reference.to_string()),
        (w.issued, a.issued.to_string()),
        (w.period, format!("{} – {end}", q.effective)),
    ] {
        out.row(10.0, &[(0.0, label), (45.0, &value)]);
    }
    out.down(4.0);

    // Before: the lines held on the effective day.
    let columns = [0.0, 80.0, 110.0];
    out.line(12.0, w.before);
    out.row(
        9.0,
        &[
            (columns[0], w.product),
            (columns[1], w.quantity),
            (columns[2], w.unit_price),
        ],
    );
    let mut after: Vec<Holding> = Vec::new();
    for h in &a.before.lines {
        let price = money(h.term_unit_price, h.currency);
        let name = (a.product_name)(&h.product_id);
        out.row(
            9.0,
            &[
                (columns[0], &name),
                (columns[1], &quantity(h.quantity)),
                (columns[2], &format!("{price} / {} m", h.price_term_months)),
            ],
        );
        after.push(Holding {
            product: h.product_id.clone(),
            quantity: h.quantity,
            price: h.term_unit_price,
            currency: h.currency,
            term_months: h.price_term_months,
        });
    }
    out.down(3.0);

    // After: each product's quantity from the effective day.
    for l in q.lines.iter().filter(|l| l.start == q.effective) {
        match after.iter_mut().find(|h| h.product == l.product_id) {
            Some(held) => held.quantity = l.quantity,
            None => after.push(Holding {
                product: l.product_id.clone(),
                quantity: l.quantity,
                price: l.unit_price,
                currency: l.currency,
                term_months: l.price_term_months,
            }),
        }
    }
    out.line(12.0, w.after);
    out.row(
        9.0,
        &[
            (columns[0], w.product),
            (columns[1], w.quantity),
            (columns[2], w.unit_price),
        ],
    );
    for h in &after {
        let price = format!("{} / {} m", money(h.price, h.currency), h.term_months);
        out.row(
            9.0,
            &[
                (columns[0], &(a.product_name)(&h.product)),
                (columns[1], &quantity(h.quantity)),
                (columns[2], &price),
            ],
        );
    }
    out.down(3.0);

    priced(&mut out, w, a.quote, a.product_name, a.locale);
    out.down(4.0);
    out.line(12.0, w.terms_title);
    out.paragraph(9.0, w.terms);
    out.finish()
}

fn words(locale: Locale) -> &'static Words {
    match locale {
        Locale::PtBr => &PT,
        Locale::En => &EN,
    }
}

fn money(locale: Locale, amount: Decimal, currency: Currency) -> String {
    locale.money(Money::from_decimal(amount), currency)
}

/// The quote's priced lines (CPQ's proration, exact, rounded once) and its totals per currency.
fn priced(
    out: &mut Writer,
    w: &Words,
    q: &Quote,
    product_name: &dyn Fn(&str) -> String,
    locale: Locale,
) {
    let money = |amount: Decimal, currency: Currency| money(locale, amount, currency);
    // The priced changes: CPQ's proration, exact, rounded once.
    let priced = [0.0, 50.0, 72.0, 100.0, 128.0, 155.0];
    out.line(12.0, w.change);
    out.row(
        8.0,
        &[
            (priced[0], w.product),
            (priced[1], w.change),
            (priced[2], w.unit_price),
            (priced[3], w.multiplier),
            (priced[4], w.prorated),
            (priced[5], w.total),
        ],
    );
    for l in &q.lines {
        let end = l.end.map_or("-".into(), |d| d.to_string());
        let change = quantity(l.effective_quantity);
        let change = if l.effective_quantity.is_sign_negative() {
            change
        } else {
            format!("+{change}")
        };
        out.row(
            8.0,
            &[
                (priced[0], &(product_name)(&l.product_id)),
                (priced[1], &change),
                (priced[2], &money(l.unit_price, l.currency)),
                (priced[3], &l.prorate_multiplier.rounded(10).to_string()),
                (priced[4], &money(l.prorated_unit_price, l.currency)),
                (priced[5], &money(l.net_total, l.currency)),
            ],
        );
        out.row(7.0, &[(priced[0], &format!("{} – {end}", l.start))]);
    }
    out.down(3.0);
    out.line(12.0, w.totals);
    for t in &q.totals {
        let amount = money(t.total, t.currency);
        out.row(10.0, &[(0.0, t.currency.code()), (30.0, &amount)]);
    }
}

/// An invoice billing a signed amendment's prorated amount.
pub struct Invoice<'a> {
    pub vendor: &'a str,
    /// Gapless per vendor.
    pub number: i64,
    pub customer_id: &'a str,
    pub customer_name: &'a str,
    /// The amendment it bills, and the event that applied it.
    pub amendment: &'a str,
    pub event: i64,
    /// When it was issued (UTC, RFC 3339).
    pub issued: &'a str,
    pub quote: &'a Quote,
    pub product_name: &'a dyn Fn(&str) -> String,
    pub locale: Locale,
}

/// The invoice as a PDF: its number, the parties, the amendment it bills, each priced line and
/// the totals per currency.
pub fn invoice_pdf(i: &Invoice) -> Result<Vec<u8>, DocumentError> {
    let w = words(i.locale);
    let title = format!("{} {}", w.invoice, i.number);
    let mut out = Writer::new(&title, &format!("{}-invoice-{}", i.amendment, i.number))?;
    out.line(16.0, &title);
    out.down(2.0);
    let q = i.quote;
    let end = q.end.map_or("-".into(), |d| d.to_string());
    for (label, value) in [
        (w.vendor, i.vendor.to_string()),
        (
            w.customer,
            format!("{} ({})", i.customer_name, i.customer_id),
        ),
        (w.contract, q.contract.clone()),
        (w.bills, i.amendment.to_string()),
        (w.event, i.event.to_string()),
        (w.issued, i.issued.to_string()),
        (w.period, format!("{} – {end}", q.effective)),
    ] {
        out.row(10.0, &[(0.0, label), (45.0, &value)]);
    }
    out.down(4.0);
    priced(&mut out, w, q, i.product_name, i.locale);
    out.finish()
}
