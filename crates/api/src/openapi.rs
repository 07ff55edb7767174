//! The OpenAPI document (`/openapi.json`). Parameters are the CLI's flags, `_` for `-`.

use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa::{IntoParams, OpenApi};

/// A month range and rules; `where` filters lines like `--where` (repeatable).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: handlers read the raw query
pub struct ReportParams {
    /// First month, YYYY-MM.
    #[param(pattern = r"^\d{4}-\d{2}$", example = "2024-01")]
    from: String,
    /// Last month, YYYY-MM.
    #[param(pattern = r"^\d{4}-\d{2}$", example = "2024-12")]
    to: String,
    /// Movement rules: conexa (default) or chartmogul.
    #[param(inline)]
    rules: Option<RulesName>,
    /// KEY=VALUE filter (segment, channel, country, family, product, customer attributes).
    r#where: Option<Vec<String>>,
    /// The book as of event:N, a day (YYYY-MM-DD) or an RFC 3339 instant.
    as_of: Option<String>,
}

/// Movement kinds.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "snake_case")]
pub enum MovementKind {
    New,
    CrossSell,
    Upsell,
    Reactivation,
    Downsell,
    Churn,
    Fx,
    EnteringSegment,
    LeavingSegment,
}

/// Cohort periods.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
pub enum CohortBy {
    Month,
    Quarter,
}

/// Cohort cell measures.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
pub enum CohortMetric {
    Mrr,
    Customers,
}

/// Items of association mining.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
pub enum ItemLevel {
    Product,
    Family,
}

/// Opportunity kinds.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "snake_case")]
pub enum OpportunityKind {
    Upsell,
    CrossSell,
}

/// Movement rules presets.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
pub enum RulesName {
    Conexa,
    Chartmogul,
}

/// A report range and the kind of movement.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DetailParams {
    #[param(pattern = r"^\d{4}-\d{2}$", example = "2024-03")]
    from: String,
    #[param(pattern = r"^\d{4}-\d{2}$", example = "2024-03")]
    to: String,
    /// new, cross_sell, upsell, reactivation, downsell, churn, fx, entering_segment or
    /// leaving_segment.
    #[param(inline)]
    kind: Option<MovementKind>,
    #[param(inline)]
    rules: Option<RulesName>,
    r#where: Option<Vec<String>>,
    as_of: Option<String>,
}

/// Cohort grid parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CohortParams {
    #[param(pattern = r"^\d{4}-\d{2}$", example = "2023-01")]
    from: String,
    #[param(pattern = r"^\d{4}-\d{2}$", example = "2024-12")]
    to: String,
    #[param(inline)]
    by: Option<CohortBy>,
    #[param(inline)]
    metric: Option<CohortMetric>,
    r#where: Option<Vec<String>>,
    as_of: Option<String>,
}

/// Association mining parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RulesParams {
    /// The day whose holdings are the baskets, YYYY-MM-DD.
    #[param(pattern = r"^\d{4}-\d{2}-\d{2}$", example = "2024-12-31")]
    at: String,
    #[param(inline)]
    level: Option<ItemLevel>,
    /// A fraction (0.05) or a count (12).
    min_support: Option<String>,
    /// 0..1.
    min_confidence: Option<String>,
    max_len: Option<u32>,
    max_itemsets: Option<u64>,
    as_of: Option<String>,
}

/// Opportunity parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct OpportunityParams {
    #[param(pattern = r"^\d{4}-\d{2}-\d{2}$", example = "2024-12-31")]
    at: String,
    /// How many (0: all).
    top: Option<u32>,
    customer: Option<String>,
    #[param(inline)]
    kind: Option<OpportunityKind>,
    min_support: Option<String>,
    min_confidence: Option<String>,
    max_len: Option<u32>,
    usage_threshold: Option<String>,
    usage_months: Option<u32>,
    skip_downsell_months: Option<u32>,
    #[param(inline)]
    rules: Option<RulesName>,
    r#where: Option<Vec<String>>,
    as_of: Option<String>,
}

/// Offer report parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct OfferParams {
    #[param(pattern = r"^\d{4}-\d{2}$", example = "2024-01")]
    from: String,
    #[param(pattern = r"^\d{4}-\d{2}$", example = "2024-12")]
    to: String,
    min_support: Option<String>,
    min_confidence: Option<String>,
    rules: Option<String>,
    r#where: Option<Vec<String>>,
    as_of: Option<String>,
}

/// Contract parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ContractParams {
    /// The day read, YYYY-MM-DD (default: the contract's last day).
    at: Option<String>,
    as_of: Option<String>,
}

/// Row listing parameters (any column is also an exact filter).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    limit: Option<u32>,
    offset: Option<u32>,
    as_of: Option<String>,
}

/// Headers of a write.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct WriteHeaders {
    /// Required on every write: the same key returns the first answer and changes nothing.
    #[param(rename = "Idempotency-Key")]
    idempotency_key: Option<String>,
    /// Why (kept in the event log).
    #[param(rename = "X-Reason")]
    x_reason: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "expansa", description = "MRR movements, KPIs, cohorts, opportunities, contracts and quotes over a book of recurring revenue. Money is exact: amounts are decimal strings. Every request needs a session (POST /login) or `Authorization: Bearer KEY` (`expansa keys create --role viewer|analyst|admin`) with the role the endpoint needs; a session's writes send its CSRF token in `X-CSRF-Token`; writes need an `Idempotency-Key`."),
    paths(
        crate::reads::movements,
        crate::reads::movement_detail,
        crate::reads::trail,
        crate::reads::kpis,
        crate::reads::cohorts,
        crate::reads::rules,
        crate::reads::opportunities,
        crate::reads::offers,
        crate::reads::contract,
        crate::renewals::renewals,
        crate::reads::events,
        crate::live::stream,
        crate::webhooks::list,
        crate::webhooks::stripe,
        crate::webhooks::generic,
        crate::webhooks::retry,
        crate::quotes::amend,
        crate::quotes::renew,
        crate::imports::sources,
        crate::imports::preview,
        crate::imports::commit,
        crate::rows::list,
        crate::rows::show,
        crate::rows::create,
        crate::rows::replace,
        crate::rows::remove,
        crate::assets::get_dashboard,
        crate::assets::put_dashboard,
        crate::auth::whoami,
        crate::admin::audit,
        crate::admin::list_users,
        crate::admin::create_user,
        crate::admin::change_user,
        crate::admin::reset_password,
        crate::portal_links::create,
        crate::portal_links::list,
        crate::portal_links::revoke,
        crate::portal_links::amendments,
    ),
    components(schemas(crate::ErrorBody, crate::error::ErrorDetail, crate::error::ProblemBody, RulesName)),
    modifiers(&Security, &HttpLayer),
)]
struct Document;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The answers the HTTP layer may give to any operation (408, 429, 500) and to any with a body
/// (413, 415), all in the error shape.
struct HttpLayer;

impl utoipa::Modify for HttpLayer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let error = |description: &str| {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content("application/json", content)
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let mut add = |status: &str, description: &str| {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error(description));
                };
                add(
                    "408",
                    "Not read and answered within the request timeout (`request_timeout`)",
                );
                add(
                    "429",
                    "Over the client's request rate (`too_many_requests`, with `Retry-After`)",
                );
                add("500", "Failed inside the server (`internal`)");
                if operation.request_body.is_some() {
                    add("413", "The body is over the limit (`payload_too_large`)");
                    add(
                        "415",
                        "The body is not sent as JSON (`unsupported_media_type`)",
                    );
                }
            }
        }
    }
}

/// The OpenAPI 3.1 document.
pub fn spec() -> utoipa::openapi::OpenApi {
    Document::openapi()
}

pub async fn document() -> Response {
    Json(spec()).into_response()
}
