//! Charts of the reports, as SVG or PNG files (chosen by the file's extension), drawn with
//! plotters and DejaVu Sans bundled in the binary (assets/fonts), so no system font is needed.
//!
//! Amounts become `f64` here only to place pixels; every number written on a chart is
//! formatted from the exact amounts.

use expansa_kpi::KpiReport;
use expansa_ledger::{Currency, Decimal, Locale, Money};
use expansa_movements::{kind_label, Kind, Report};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use std::path::Path;
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
const SIZE: (u32, u32) = (1100, 700);

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("{0}: the chart file must end in .svg or .png")]
    Extension(String),
    #[error("cannot draw {path}: {reason}")]
    Draw { path: String, reason: String },
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled font is known to parse; failing here would be a build defect.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draws with `$draw(&area, args...)` into `$path`, as SVG or PNG by its extension.
macro_rules! render {
    ($path:expr, $draw:ident ( $($arg:expr),* )) => {{
        let path: &Path = $path;
        register_font();
        let shown = path.display().to_string();
        let fail = |reason: String| ChartError::Draw {
            path: shown.clone(),
            reason,
        };
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("svg") => {
                let area = SVGBackend::new(path, SIZE).into_drawing_area();
                $draw(&area, $($arg),*).map_err(fail)?;
                area.present().map_err(|e| fail(e.to_string()))
            }
            Some("png") => {
                let area = BitMapBackend::new(path, SIZE).into_drawing_area();
                $draw(&area, $($arg),*).map_err(fail)?;
                area.present().map_err(|e| fail(e.to_string()))
            }
            _ => Err(ChartError::Extension(shown)),
        }
    }};
}

/// The x range of a chart of `n` months: month `i` is centred on `i`.
fn x_range(n: usize) -> std::ops::Range<f64> {
    -0.5..(n as f64 - 0.5)
}

/// The month at x position `v` (tick labels), if it is a month's centre.
fn month_at(months: &[String], v: f64) -> String {
    let i = v.round();
    if (v - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    months.get(i as usize).cloned().unwrap_or_default()
}

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

fn color(kind: Kind) -> RGBColor {
    match kind {
        Kind::New => RGBColor(46, 125, 50),
        Kind::CrossSell => RGBColor(30, 136, 229),
        Kind::Upsell => RGBColor(0, 172, 193),
        Kind::Reactivation => RGBColor(124, 179, 66),
        Kind::Downsell => RGBColor(251, 140, 0),
        Kind::Churn => RGBColor(229, 57, 53),
        Kind::Fx => RGBColor(142, 36, 170),
        Kind::EnteringSegment => RGBColor(121, 134, 203),
        Kind::LeavingSegment => RGBColor(161, 136, 127),
    }
}

/// Tick labels of money axes: whole units of the currency in the locale's style.
fn money_label(v: f64, currency: Currency, locale: Locale) -> String {
    let whole = Decimal::from_f64_retain(v.round())
        .unwrap_or_default()
        .round();
    let text = locale.money(Money::from_decimal(whole), currency);
    text.rsplit_once([',', '.'])
        .filter(|(_, cents)| cents.len() == currency.minor_units() as usize)
        .map_or(text.clone(), |(units, _)| units.to_string())
}

/// The movement report: stacked bars of each month's gains (up) and losses (down) under a
/// line of MRR at the end of the month.
pub fn movements_chart(report: &Report, locale: Locale, path: &Path) -> Result<(), ChartError> {
    render!(path, draw_movements(report, locale))
}

/// The movement chart as an SVG document (for pages that inline it).
pub fn movements_svg(report: &Report, locale: Locale) -> Result<String, ChartError> {
    register_font();
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let fail = |reason: String| ChartError::Draw {
            path: "(inline SVG)".into(),
            reason,
        };
        draw_movements(&area, report, locale).map_err(fail)?;
        area.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(svg)
}

fn draw_movements<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &Report,
    locale: Locale,
) -> Result<(), String> {
    let c = report.currency;
    let months: Vec<String> = report.months.iter().map(|m| m.month.to_string()).collect();
    let (title, mrr_title) = match locale {
        Locale::PtBr => ("Movimentos de MRR", "MRR no fim do mês"),
        Locale::En => ("MRR movements", "MRR at month end"),
    };
    let money = |v: &f64| money_label(*v, c, locale);
    let (top, bottom) = page(root, title, SIZE.1 * 2 / 5)?;

    let mrr: Vec<f64> = report
        .months
        .iter()
        .map(|m| f(m.mrr_end.as_decimal()))
        .collect();
    let high = mrr.iter().cloned().fold(1.0, f64::max) * 1.1;
    let mut chart = month_panel(&top, Some(mrr_title), &months, 0.0..high, &money)?;
    chart
        .draw_series(LineSeries::new(
            mrr.iter().enumerate().map(|(i, v)| (i as f64, *v)),
            RGBColor(33, 33, 33).stroke_width(3),
        ))
        .map_err(text)?;

    // Gains stack up, losses down; fx and the segment moves go either way.
    let ups = |m: &expansa_movements::MonthTotals| {
        Kind::ALL
            .iter()
            .map(|k| f(m.get(*k).as_decimal()).max(0.0))
            .sum::<f64>()
    };
    let downs = |m: &expansa_movements::MonthTotals| {
        Kind::ALL
            .iter()
            .map(|k| f(m.get(*k).as_decimal()).min(0.0))
            .sum::<f64>()
    };
    let max_up = report.months.iter().map(ups).fold(1.0, f64::max) * 1.1;
    let max_down = report.months.iter().map(downs).fold(0.0, f64::min) * 1.1;
    let mut chart = month_panel(&bottom, None, &months, max_down.min(-1.0)..max_up, &money)?;
    for (i, m) in report.months.iter().enumerate() {
        let (mut up, mut down) = (0.0, 0.0);
        for kind in Kind::ALL {
            let v = f(m.get(kind).as_decimal());
            let (from, to) = if v >= 0.0 {
                up += v;
                (up - v, up)
            } else {
                down += v;
                (down - v, down)
            };
            if v != 0.0 {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(i as f64 - 0.38, from), (i as f64 + 0.38, to)],
                        color(kind).filled(),
                    )))
                    .map_err(text)?;
            }
        }
    }
    // The segment moves are listed only when a filter made some.
    let listed = |k: Kind| {
        !matches!(k, Kind::EnteringSegment | Kind::LeavingSegment)
            || report.months.iter().any(|m| !m.get(k).is_zero())
    };
    for kind in Kind::ALL.into_iter().filter(|&k| listed(k)) {
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
            .map_err(text)?
            .label(kind_label(kind, locale))
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 14, y + 6)], color(kind).filled())
            });
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// The KPI report: MRR and ARR, and the churn rates (customer, gross and net MRR) in %.
pub fn kpi_chart(report: &KpiReport, locale: Locale, path: &Path) -> Result<(), ChartError> {
    render!(path, draw_kpis(report, locale))
}

fn draw_kpis<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &KpiReport,
    locale: Locale,
) -> Result<(), String> {
    let c = report.currency;
    let months: Vec<String> = report.months.iter().map(|m| m.month.to_string()).collect();
    let (title, rates_title, names) = match locale {
        Locale::PtBr => (
            "MRR, ARR e churn",
            "Churn (% ao mês)",
            [
                "Churn de clientes",
                "Churn bruto de MRR",
                "Churn líquido de MRR",
            ],
        ),
        Locale::En => (
            "MRR, ARR and churn",
            "Churn (% a month)",
            ["Customer churn", "Gross MRR churn", "Net MRR churn"],
        ),
    };
    let (top, bottom) = page(root, title, SIZE.1 / 2)?;

    let money = |m: Money| Some(f(m.as_decimal()));
    let pct = |r: Option<Decimal>| r.map(|r| f(r * Decimal::ONE_HUNDRED));
    let column = |value: &dyn Fn(&expansa_kpi::KpiMonth) -> Option<f64>| -> Vec<Option<f64>> {
        report.months.iter().map(value).collect()
    };
    let amounts = [
        ("ARR", column(&|m| money(m.arr)), RGBColor(30, 136, 229)),
        ("MRR", column(&|m| money(m.mrr)), RGBColor(33, 33, 33)),
    ];
    let rates = [
        (
            names[0],
            column(&|m| pct(m.customer_churn_rate)),
            RGBColor(229, 57, 53),
        ),
        (
            names[1],
            column(&|m| pct(m.gross_mrr_churn_rate)),
            RGBColor(251, 140, 0),
        ),
        (
            names[2],
            column(&|m| pct(m.net_mrr_churn_rate)),
            RGBColor(94, 53, 177),
        ),
    ];

    let high = amounts[0].1.iter().flatten().cloned().fold(1.0, f64::max) * 1.1;
    let money_axis = |v: &f64| money_label(*v, c, locale);
    let mut chart = month_panel(&top, None, &months, 0.0..high, &money_axis)?;
    lines(&mut chart, &amounts, 3)?;
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;

    let values = rates.iter().flat_map(|(_, v, _)| v.iter().flatten());
    let high = values.clone().cloned().fold(1.0, f64::max) * 1.2;
    let low = values.cloned().fold(0.0, f64::min) * 1.2;
    let percent_axis = |v: &f64| format!("{v:.1}%");
    let mut chart = month_panel(
        &bottom,
        Some(rates_title),
        &months,
        low..high,
        &percent_axis,
    )?;
    lines(&mut chart, &rates, 2)?;
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// A drawing area of a chart file.
type Area<DB> = DrawingArea<DB, Shift>;

/// A chart panel of monthly values.
type Panel<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Plotters' errors as text.
fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A white page with `title`, cut into a top and a bottom area `split` pixels down.
fn page<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    split: u32,
) -> Result<(Area<DB>, Area<DB>), String> {
    root.fill(&WHITE).map_err(text)?;
    let titled = root.titled(title, ("sans-serif", 26)).map_err(text)?;
    Ok(titled.split_vertically(split))
}

/// A panel with one column per month (x) and `y` on the vertical axis, ticks by `y_label`.
fn month_panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: Option<&str>,
    months: &[String],
    y: std::ops::Range<f64>,
    y_label: &dyn Fn(&f64) -> String,
) -> Result<Panel<'a, DB>, String> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(120);
    if let Some(caption) = caption {
        builder.caption(caption, ("sans-serif", 18));
    }
    let mut chart = builder
        .build_cartesian_2d(x_range(months.len()), y)
        .map_err(text)?;
    chart
        .configure_mesh()
        .x_labels(months.len().min(12))
        .x_label_formatter(&|v| month_at(months, *v))
        .y_label_formatter(y_label)
        .draw()
        .map_err(text)?;
    Ok(chart)
}

/// Named lines of monthly values (gaps where a value is missing), each in the legend.
fn lines<'a, DB: DrawingBackend + 'a>(
    chart: &mut Panel<'a, DB>,
    series: &[(&str, Vec<Option<f64>>, RGBColor)],
    width: u32,
) -> Result<(), String> {
    for (name, values, color) in series {
        let style = color.stroke_width(width);
        chart
            .draw_series(LineSeries::new(
                values
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| (i as f64, v))),
                style,
            ))
            .map_err(text)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], style));
    }
    Ok(())
}

/// The legend of the panel's named series.
fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Panel<'a, DB>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(position)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(text)
}
