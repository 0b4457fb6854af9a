//! Pictures of a report as standalone SVG: the precision-recall curve and the score
//! histograms of positives and negatives.

use crate::report::JudgeReport;

const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 320.0;
const MARGIN: f64 = 40.0;

fn frame(title: &str, x_label: &str, y_label: &str, body: &str) -> String {
    let (right, bottom) = (WIDTH - MARGIN, HEIGHT - MARGIN);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\
<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
<text x=\"{}\" y=\"20\" text-anchor=\"middle\">{title}</text>\
<line x1=\"{MARGIN}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"black\"/>\
<line x1=\"{MARGIN}\" y1=\"{MARGIN}\" x2=\"{MARGIN}\" y2=\"{bottom}\" stroke=\"black\"/>\
<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{x_label}</text>\
<text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">{y_label}</text>{body}</svg>\n",
        WIDTH / 2.0,
        WIDTH / 2.0,
        HEIGHT - 8.0,
        HEIGHT / 2.0,
        HEIGHT / 2.0
    )
}

fn x(value: f64) -> f64 {
    MARGIN + value.clamp(0.0, 1.0) * (WIDTH - 2.0 * MARGIN)
}

fn y(value: f64) -> f64 {
    HEIGHT - MARGIN - value.clamp(0.0, 1.0) * (HEIGHT - 2.0 * MARGIN)
}

/// The precision-recall curve (recall on x, precision on y).
pub fn pr_curve_svg(report: &JudgeReport) -> String {
    let points: Vec<String> = report
        .pr_curve
        .iter()
        .map(|point| format!("{:.1},{:.1}", x(point.recall), y(point.precision)))
        .collect();
    let body = format!(
        "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{}\"/>",
        points.join(" ")
    );
    frame(
        "Precision-recall (positives = MATCH + EDGE)",
        "recall",
        "precision",
        &body,
    )
}

/// Histograms of scores for gold positives and negatives, 20 bins over [0, 1].
pub fn score_histogram_svg(positives: &[f64], negatives: &[f64]) -> String {
    const BINS: usize = 20;
    let count = |scores: &[f64]| {
        let mut bins = [0usize; BINS];
        for score in scores {
            bins[((score.clamp(0.0, 1.0) * BINS as f64) as usize).min(BINS - 1)] += 1;
        }
        bins
    };
    let (positive_bins, negative_bins) = (count(positives), count(negatives));
    let tallest = positive_bins
        .iter()
        .chain(&negative_bins)
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let bar_width = (WIDTH - 2.0 * MARGIN) / BINS as f64 / 2.0;
    let mut body = String::new();
    for bin in 0..BINS {
        for (offset, (bins, colour)) in [(&positive_bins, "#d62728"), (&negative_bins, "#2ca02c")]
            .iter()
            .enumerate()
        {
            let height = bins[bin] as f64 / tallest * (HEIGHT - 2.0 * MARGIN);
            body.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar_width:.1}\" height=\"{height:.1}\" fill=\"{colour}\"/>",
                x(bin as f64 / BINS as f64) + offset as f64 * bar_width,
                HEIGHT - MARGIN - height
            ));
        }
    }
    frame(
        "Scores: positives (red) vs NO_MATCH (green)",
        "P(match) + P(edge)",
        "items",
        &body,
    )
}
