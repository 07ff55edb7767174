//! Charts of the reports, as SVG or PNG files (chosen by the file's extension), drawn with
//! plotters and DejaVu Sans bundled in the binary (assets/fonts), so no system font is needed.
//!
//! Amounts become `f64` here only to place pixels; every number written on a chart is
//! formatted from the exact amounts.

use expansa_kpi::KpiReport;
use expansa_ledger::{Currency, Decimal, Locale, Money};
use expansa_movements::{kind_label, Kind, Report};
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
    let n = report.months.len();
    let months: Vec<String> = report.months.iter().map(|m| m.month.to_string()).collect();
    let (title, mrr_title) = match locale {
        Locale::PtBr => ("Movimentos de MRR", "MRR no fim do mês"),
        Locale::En => ("MRR movements", "MRR at month end"),
    };
    {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(title, ("sans-serif", 26))
            .map_err(|e| e.to_string())?;
        let (top, bottom) = root.split_vertically(SIZE.1 * 2 / 5);
        let x_label = |v: &f64| month_at(&months, *v);

        let mrr: Vec<f64> = report
            .months
            .iter()
            .map(|m| f(m.mrr_end.as_decimal()))
            .collect();
        let high = mrr.iter().cloned().fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&top)
            .caption(mrr_title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(110)
            .build_cartesian_2d(x_range(n), 0.0..high)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(n.min(12))
            .x_label_formatter(&x_label)
            .y_label_formatter(&|v| money_label(*v, c, locale))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                mrr.iter().enumerate().map(|(i, v)| (i as f64, *v)),
                RGBColor(33, 33, 33).stroke_width(3),
            ))
            .map_err(|e| e.to_string())?;

        let ups = |m: &expansa_movements::MonthTotals| {
            [Kind::New, Kind::CrossSell, Kind::Upsell, Kind::Reactivation]
                .iter()
                .map(|k| f(m.get(*k).as_decimal()))
                .sum::<f64>()
        };
        let downs = |m: &expansa_movements::MonthTotals| {
            f((m.get(Kind::Downsell) + m.get(Kind::Churn)).as_decimal())
        };
        let max_up = report.months.iter().map(ups).fold(1.0, f64::max) * 1.1;
        let max_down = report.months.iter().map(downs).fold(0.0, f64::min) * 1.1;
        let mut chart = ChartBuilder::on(&bottom)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(110)
            .build_cartesian_2d(x_range(n), max_down.min(-1.0)..max_up)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(n.min(12))
            .x_label_formatter(&x_label)
            .y_label_formatter(&|v| money_label(*v, c, locale))
            .draw()
            .map_err(|e| e.to_string())?;
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
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        for kind in Kind::ALL {
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
                .map_err(|e| e.to_string())?
                .label(kind_label(kind, locale))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color(kind).filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    }
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
    let n = report.months.len();
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
    {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(title, ("sans-serif", 26))
            .map_err(|e| e.to_string())?;
        let (top, bottom) = root.split_vertically(SIZE.1 / 2);
        let x_label = |v: &f64| month_at(&months, *v);
        let arr: Vec<f64> = report
            .months
            .iter()
            .map(|m| f(m.arr.as_decimal()))
            .collect();
        let mrr: Vec<f64> = report
            .months
            .iter()
            .map(|m| f(m.mrr.as_decimal()))
            .collect();
        let high = arr.iter().cloned().fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&top)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(120)
            .build_cartesian_2d(x_range(n), 0.0..high)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(n.min(12))
            .x_label_formatter(&x_label)
            .y_label_formatter(&|v| money_label(*v, c, locale))
            .draw()
            .map_err(|e| e.to_string())?;
        for (name, values, style) in [
            ("ARR", &arr, RGBColor(30, 136, 229)),
            ("MRR", &mrr, RGBColor(33, 33, 33)),
        ] {
            chart
                .draw_series(LineSeries::new(
                    values.iter().enumerate().map(|(i, v)| (i as f64, *v)),
                    style.stroke_width(3),
                ))
                .map_err(|e| e.to_string())?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], style.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;

        let pct = |r: Option<Decimal>| r.map(|r| f(r * Decimal::ONE_HUNDRED));
        let series: [Vec<Option<f64>>; 3] = [
            report
                .months
                .iter()
                .map(|m| pct(m.customer_churn_rate))
                .collect(),
            report
                .months
                .iter()
                .map(|m| pct(m.gross_mrr_churn_rate))
                .collect(),
            report
                .months
                .iter()
                .map(|m| pct(m.net_mrr_churn_rate))
                .collect(),
        ];
        let values = series.iter().flatten().flatten();
        let high = values.clone().cloned().fold(1.0, f64::max) * 1.2;
        let low = values.cloned().fold(0.0, f64::min) * 1.2;
        let mut chart = ChartBuilder::on(&bottom)
            .caption(rates_title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(120)
            .build_cartesian_2d(x_range(n), low..high)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(n.min(12))
            .x_label_formatter(&x_label)
            .y_label_formatter(&|v| format!("{v:.1}%"))
            .draw()
            .map_err(|e| e.to_string())?;
        let colors = [
            RGBColor(229, 57, 53),
            RGBColor(251, 140, 0),
            RGBColor(94, 53, 177),
        ];
        for ((name, values), style) in names.iter().zip(&series).zip(colors) {
            chart
                .draw_series(LineSeries::new(
                    values
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| v.map(|v| (i as f64, v))),
                    style.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], style.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}
