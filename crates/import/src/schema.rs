//! The files of the interchange format: their columns, what each column holds, the columns
//! that identify a row (used by the store to version rows across imports), and the other names
//! (pt-BR) a header or a workbook's sheet may give them.
//!
//! A header name is matched to a column by [`header_key`]: case, accents, spaces, hyphens and
//! underscores do not matter (`Data de início`, `data_de_inicio` and `DATA-DE-INICIO` are one
//! name). A name is the column's own (`start_date`, `Start Date`) or one of its
//! [`Schema::aliases`] (`início`, `data_inicio`); two header names that name one column are a
//! problem. This holds for every book, CSV files and workbooks alike.

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    Text,
    /// An exact decimal (money, quantity, percentage, rate).
    Decimal,
    /// `YYYY-MM-DD`.
    Date,
    /// `YYYY-MM`.
    Month,
    Integer,
}

/// One file of the interchange format.
#[derive(Clone, Copy, Debug)]
pub struct Schema {
    pub file: &'static str,
    /// Lower-case column names, in the canonical order.
    pub columns: &'static [&'static str],
    /// What each column of `columns` holds.
    pub kinds: &'static [ColumnKind],
    /// Columns that must be in the header.
    pub required: &'static [&'static str],
    /// Columns whose values identify a row.
    pub key: &'static [&'static str],
    /// Other names of columns (pt-BR), as [`header_key`] writes them: `(alias, column)`.
    pub aliases: &'static [(&'static str, &'static str)],
    /// Other names of the file as a workbook's sheet (pt-BR), as [`header_key`] writes them.
    pub sheets: &'static [&'static str],
}

impl Schema {
    /// The position of a column.
    pub fn position(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| *c == column)
    }

    /// The column a header name names: its own name or an alias, compared by [`header_key`]
    /// (`Cliente`, `customer id` and `customer_id` all name `customer_id` of subscriptions).
    pub fn column_of(&self, header: &str) -> Option<usize> {
        let key = header_key(header);
        self.position(&key).or_else(|| {
            let (_, column) = self.aliases.iter().find(|(alias, _)| *alias == key)?;
            self.position(column)
        })
    }

    /// The file's name without `.csv` (`subscriptions`): a workbook's sheet of that name holds it.
    pub fn stem(&self) -> &'static str {
        self.file.strip_suffix(".csv").unwrap_or(self.file)
    }

    /// Whether a workbook's sheet of this name holds the file: `subscriptions`,
    /// `subscriptions.csv` or a pt-BR name (`assinaturas`), compared by [`header_key`].
    pub fn is_sheet(&self, sheet: &str) -> bool {
        let key = header_key(sheet);
        let key = key.strip_suffix(".csv").unwrap_or(&key);
        key == self.stem() || self.sheets.contains(&key)
    }
}

/// A header or sheet name as it is compared: trimmed (of ASCII spaces: a no-break space is
/// part of a name, as the reader keeps it), lower case, Portuguese (and other Latin)
/// accents removed, and every run of spaces, hyphens and underscores one `_`
/// (`" Data de Início "` is `data_de_inicio`).
pub fn header_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut gap = false;
    for c in name.trim_ascii().chars().flat_map(char::to_lowercase) {
        let c = match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            ' ' | '-' | '_' | '\t' => {
                gap = true;
                continue;
            }
            // A combining accent (a name typed in decomposed form).
            '\u{300}'..='\u{36f}' => continue,
            c => c,
        };
        if gap && !out.is_empty() {
            out.push('_');
        }
        gap = false;
        out.push(c);
    }
    out
}

use ColumnKind::{Date as D, Decimal as N, Integer as I, Month as M, Text as T};

pub const CUSTOMERS: Schema = Schema {
    file: "customers.csv",
    columns: &[
        "id",
        "name",
        "registered_on",
        "segment",
        "country",
        "channel",
    ],
    kinds: &[T, T, D, T, T, T],
    required: &["id"],
    key: &["id"],
    aliases: &[
        ("cliente", "id"),
        ("id_cliente", "id"),
        ("codigo", "id"),
        ("codigo_cliente", "id"),
        ("nome", "name"),
        ("razao_social", "name"),
        ("cadastro", "registered_on"),
        ("data_cadastro", "registered_on"),
        ("data_de_cadastro", "registered_on"),
        ("cadastrado_em", "registered_on"),
        ("segmento", "segment"),
        ("pais", "country"),
        ("canal", "channel"),
    ],
    sheets: &["clientes", "cliente"],
};

pub const PRODUCTS: Schema = Schema {
    file: "products.csv",
    columns: &[
        "id",
        "name",
        "family",
        "tier",
        "kind",
        "list_price",
        "price_term_months",
        "currency",
    ],
    kinds: &[T, T, T, I, T, N, I, T],
    required: &["id"],
    key: &["id"],
    aliases: &[
        ("produto", "id"),
        ("id_produto", "id"),
        ("codigo", "id"),
        ("codigo_produto", "id"),
        ("nome", "name"),
        ("familia", "family"),
        ("nivel", "tier"),
        ("tipo", "kind"),
        ("preco_lista", "list_price"),
        ("preco_de_lista", "list_price"),
        ("prazo_preco_meses", "price_term_months"),
        ("meses_preco", "price_term_months"),
        ("moeda", "currency"),
    ],
    sheets: &["produtos", "produto"],
};

pub const SUBSCRIPTIONS: Schema = Schema {
    file: "subscriptions.csv",
    columns: &[
        "id",
        "customer_id",
        "contract_id",
        "product_id",
        "quantity",
        "unit_price",
        "discount_pct",
        "currency",
        "billing_period_months",
        "start_date",
        "end_date",
        "sold_on",
        "revises",
        // Added after version 1 of the format: kept last, so the older columns keep their
        // positions (docs/interchange.md).
        "billing_interval",
        "billing_interval_count",
    ],
    kinds: &[T, T, T, T, N, N, N, T, I, D, D, D, T, T, I],
    required: &[
        "id",
        "customer_id",
        "product_id",
        "unit_price",
        "start_date",
    ],
    key: &["id"],
    aliases: &[
        ("id_linha", "id"),
        ("linha", "id"),
        ("id_assinatura", "id"),
        ("assinatura", "id"),
        ("cliente", "customer_id"),
        ("id_cliente", "customer_id"),
        ("codigo_cliente", "customer_id"),
        ("contrato", "contract_id"),
        ("id_contrato", "contract_id"),
        ("produto", "product_id"),
        ("id_produto", "product_id"),
        ("codigo_produto", "product_id"),
        ("quantidade", "quantity"),
        ("qtd", "quantity"),
        ("qtde", "quantity"),
        ("valor", "unit_price"),
        ("preco", "unit_price"),
        ("valor_unitario", "unit_price"),
        ("preco_unitario", "unit_price"),
        ("desconto", "discount_pct"),
        ("desconto_pct", "discount_pct"),
        ("pct_desconto", "discount_pct"),
        ("desconto_percentual", "discount_pct"),
        ("moeda", "currency"),
        ("periodicidade_meses", "billing_period_months"),
        ("periodicidade", "billing_period_months"),
        ("meses", "billing_period_months"),
        ("inicio", "start_date"),
        ("data_inicio", "start_date"),
        ("data_de_inicio", "start_date"),
        ("fim", "end_date"),
        ("data_fim", "end_date"),
        ("data_de_fim", "end_date"),
        ("termino", "end_date"),
        ("data_termino", "end_date"),
        ("data_de_termino", "end_date"),
        ("vendido_em", "sold_on"),
        ("data_venda", "sold_on"),
        ("data_da_venda", "sold_on"),
        ("revisa", "revises"),
        ("substitui", "revises"),
    ],
    sheets: &["assinaturas", "assinatura", "linhas"],
};

pub const CONTRACTS: Schema = Schema {
    file: "contracts.csv",
    columns: &[
        "id",
        "customer_id",
        "start_date",
        "end_date",
        "renewal_pricing",
        "renewal_uplift_pct",
        "renewal_term_months",
    ],
    kinds: &[T, T, D, D, T, N, I],
    required: &["id", "customer_id", "start_date"],
    key: &["id"],
    aliases: &[
        ("contrato", "id"),
        ("id_contrato", "id"),
        ("cliente", "customer_id"),
        ("id_cliente", "customer_id"),
        ("inicio", "start_date"),
        ("data_inicio", "start_date"),
        ("data_de_inicio", "start_date"),
        ("fim", "end_date"),
        ("data_fim", "end_date"),
        ("data_de_fim", "end_date"),
        ("termino", "end_date"),
        ("data_termino", "end_date"),
        ("preco_renovacao", "renewal_pricing"),
        ("renovacao_preco", "renewal_pricing"),
        ("reajuste_pct", "renewal_uplift_pct"),
        ("reajuste_renovacao_pct", "renewal_uplift_pct"),
        ("reajuste", "renewal_uplift_pct"),
        ("prazo_renovacao_meses", "renewal_term_months"),
        ("meses_renovacao", "renewal_term_months"),
    ],
    sheets: &["contratos", "contrato"],
};

pub const CONTRACTED_PRICES: Schema = Schema {
    file: "contracted_prices.csv",
    columns: &[
        "customer_id",
        "product_id",
        "price",
        "discount_pct",
        "valid_from",
        "valid_to",
    ],
    kinds: &[T, T, N, N, D, D],
    required: &["customer_id", "product_id"],
    key: &["customer_id", "product_id", "valid_from"],
    aliases: &[
        ("cliente", "customer_id"),
        ("id_cliente", "customer_id"),
        ("produto", "product_id"),
        ("id_produto", "product_id"),
        ("preco", "price"),
        ("valor", "price"),
        ("desconto", "discount_pct"),
        ("desconto_pct", "discount_pct"),
        ("valido_de", "valid_from"),
        ("valido_desde", "valid_from"),
        ("vigencia_inicio", "valid_from"),
        ("valido_ate", "valid_to"),
        ("vigencia_fim", "valid_to"),
    ],
    sheets: &["precos_contratados", "precos_negociados"],
};

pub const FX_RATES: Schema = Schema {
    file: "fx_rates.csv",
    columns: &["month", "currency", "rate"],
    kinds: &[M, T, N],
    required: &["month", "currency", "rate"],
    key: &["month", "currency"],
    aliases: &[
        ("mes", "month"),
        ("moeda", "currency"),
        ("taxa", "rate"),
        ("cotacao", "rate"),
    ],
    sheets: &["cambio", "taxas_de_cambio", "cotacoes"],
};

pub const MARKETING_SPEND: Schema = Schema {
    file: "marketing_spend.csv",
    columns: &["month", "channel", "amount"],
    kinds: &[M, T, N],
    required: &["month", "channel", "amount"],
    key: &["month", "channel"],
    aliases: &[
        ("mes", "month"),
        ("canal", "channel"),
        ("valor", "amount"),
        ("gasto", "amount"),
        ("investimento", "amount"),
    ],
    sheets: &["marketing", "gastos_marketing", "gastos_de_marketing"],
};

pub const USAGE: Schema = Schema {
    file: "usage.csv",
    columns: &["customer_id", "product_id", "month", "used", "included"],
    kinds: &[T, T, M, N, N],
    required: &["customer_id", "product_id", "month", "used", "included"],
    key: &["customer_id", "product_id", "month"],
    aliases: &[
        ("cliente", "customer_id"),
        ("id_cliente", "customer_id"),
        ("produto", "product_id"),
        ("id_produto", "product_id"),
        ("mes", "month"),
        ("usado", "used"),
        ("uso", "used"),
        ("consumo", "used"),
        ("incluido", "included"),
        ("franquia", "included"),
    ],
    sheets: &["uso", "consumo"],
};

pub const OFFERS: Schema = Schema {
    file: "offers.csv",
    columns: &[
        "id",
        "customer_id",
        "product_id",
        "kind",
        "offered_on",
        "outcome",
        "decided_on",
        "line_id",
    ],
    kinds: &[T, T, T, T, D, T, D, T],
    required: &["id", "customer_id", "product_id", "kind", "offered_on"],
    key: &["id"],
    aliases: &[
        ("oferta", "id"),
        ("id_oferta", "id"),
        ("cliente", "customer_id"),
        ("id_cliente", "customer_id"),
        ("produto", "product_id"),
        ("id_produto", "product_id"),
        ("tipo", "kind"),
        ("ofertado_em", "offered_on"),
        ("oferecido_em", "offered_on"),
        ("data_oferta", "offered_on"),
        ("resultado", "outcome"),
        ("decidido_em", "decided_on"),
        ("data_decisao", "decided_on"),
        ("linha", "line_id"),
        ("id_linha", "line_id"),
    ],
    sheets: &["ofertas"],
};

/// Every file, in the order a book is read (subscriptions first: it is the one required).
pub const FILES: [Schema; 9] = [
    SUBSCRIPTIONS,
    CUSTOMERS,
    PRODUCTS,
    CONTRACTS,
    CONTRACTED_PRICES,
    FX_RATES,
    MARKETING_SPEND,
    USAGE,
    OFFERS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_is_consistent() {
        for s in FILES {
            assert_eq!(s.columns.len(), s.kinds.len(), "{}", s.file);
            for c in s.required.iter().chain(s.key) {
                assert!(s.position(c).is_some(), "{}: {c}", s.file);
            }
            let mut names: Vec<&str> = s.columns.to_vec();
            for (alias, column) in s.aliases {
                assert_eq!(
                    header_key(alias),
                    *alias,
                    "{}: {alias} is written as compared",
                    s.file
                );
                assert!(
                    s.position(column).is_some(),
                    "{}: {alias} names {column}",
                    s.file
                );
                names.push(alias);
            }
            let all = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), all, "{}: a name names two columns", s.file);
            for sheet in s.sheets {
                assert_eq!(header_key(sheet), *sheet, "{}", s.file);
            }
        }
        // No sheet name names two files.
        let mut sheets: Vec<&str> = FILES
            .iter()
            .flat_map(|s| s.sheets.iter().copied())
            .collect();
        sheets.extend(FILES.iter().map(|s| s.stem()));
        let all = sheets.len();
        sheets.sort_unstable();
        sheets.dedup();
        assert_eq!(sheets.len(), all);
    }

    #[test]
    fn header_names_are_compared_without_case_accents_or_spacing() {
        assert_eq!(header_key(" Data de Início "), "data_de_inicio");
        assert_eq!(header_key("PREÇO"), "preco");
        assert_eq!(header_key("customer  ID"), "customer_id");
        assert_eq!(header_key("valor-unitário"), "valor_unitario");
        assert_eq!(header_key("__x__"), "x");
        // Decomposed accents (e + U+0301).
        assert_eq!(header_key("Pai\u{301}s"), "pais");
        let s = SUBSCRIPTIONS;
        let col = |h: &str| s.column_of(h).map(|k| s.columns[k]);
        assert_eq!(col("Cliente"), Some("customer_id"));
        assert_eq!(col("customer_id"), Some("customer_id"));
        assert_eq!(col("Início"), Some("start_date"));
        assert_eq!(col("término"), Some("end_date"));
        assert_eq!(col("Valor unitário"), Some("unit_price"));
        assert_eq!(col("Start Date"), Some("start_date"));
        assert_eq!(col("observação"), None);
        assert_eq!(
            CUSTOMERS.column_of("País").map(|k| CUSTOMERS.columns[k]),
            Some("country")
        );
        assert!(SUBSCRIPTIONS.is_sheet("Assinaturas"));
        assert!(SUBSCRIPTIONS.is_sheet("subscriptions.csv"));
        assert!(CUSTOMERS.is_sheet("CLIENTES"));
        assert!(!CUSTOMERS.is_sheet("assinaturas"));
    }
}
