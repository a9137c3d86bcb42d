//! The picture of peak shaving: ingest rate, drain rate and backlog over time, as a PNG.
//!
//! Text needs a TrueType font; the chart uses DejaVu Sans where the system has it (Debian's
//! fonts-dejavu-core) and is drawn without labels otherwise.

use std::path::Path;

use plotters::prelude::*;

/// One progress sample.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub t: f64,
    /// Requests answered per second (accepted or not): the demand.
    pub demand: f64,
    /// Accepted buys per second over the last interval.
    pub ingest: f64,
    /// Orders written per second over the last interval.
    pub drain: f64,
    /// Accepted but not yet in the database.
    pub backlog: f64,
}

const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

fn register_font() -> bool {
    for path in FONTS {
        if let Ok(bytes) = std::fs::read(path) {
            // The font lives as long as the process: plotters wants 'static bytes.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

pub fn draw(path: &Path, title: &str, samples: &[Sample]) -> anyhow::Result<()> {
    let text = register_font();
    let root = BitMapBackend::new(path, (1200, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let t_max = samples.iter().map(|s| s.t).fold(1.0, f64::max);
    let rate_max = samples
        .iter()
        .map(|s| s.demand.max(s.ingest).max(s.drain))
        .fold(1.0, f64::max)
        * 1.1;
    let backlog_max = samples.iter().map(|s| s.backlog).fold(1.0, f64::max) * 1.1;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if text {
        builder
            .caption(title, ("sans-serif", 26))
            .x_label_area_size(40)
            .y_label_area_size(70)
            .right_y_label_area_size(70);
    }
    let mut chart = builder
        .build_cartesian_2d(0.0..t_max, 0.0..rate_max)?
        .set_secondary_coord(0.0..t_max, 0.0..backlog_max);
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("seconds").y_desc("per second");
    } else {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.draw()?;
    if text {
        chart
            .configure_secondary_axes()
            .y_desc("backlog (buys queued)")
            .draw()?;
    }
    let demand = chart.draw_series(LineSeries::new(
        samples.iter().map(|s| (s.t, s.demand)),
        RGBColor(150, 150, 150).stroke_width(2),
    ))?;
    if text {
        demand
            .label("requests answered/s (incl. 410 sold out)")
            .legend(|(x, y)| {
                PathElement::new(
                    vec![(x, y), (x + 20, y)],
                    RGBColor(150, 150, 150).stroke_width(2),
                )
            });
    }
    let ingest = chart.draw_series(LineSeries::new(
        samples.iter().map(|s| (s.t, s.ingest)),
        BLUE.stroke_width(3),
    ))?;
    if text {
        ingest
            .label("ingest (202/s)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(3)));
    }
    let drain = chart.draw_series(LineSeries::new(
        samples.iter().map(|s| (s.t, s.drain)),
        GREEN.stroke_width(3),
    ))?;
    if text {
        drain
            .label("drain (orders written/s)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN.stroke_width(3)));
    }
    let backlog = chart.draw_secondary_series(LineSeries::new(
        samples.iter().map(|s| (s.t, s.backlog)),
        RED.stroke_width(2),
    ))?;
    if text {
        backlog
            .label("backlog (right axis)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
