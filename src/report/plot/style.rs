//! What every chart shares: size, the embedded font, text sizes, colours, the legend panel.
//! Text needs no system font: DejaVu Sans ships in `assets/fonts/` and is compiled in.

use plotters::chart::MeshStyle;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::pe;

/// The default picture size, WIDTHxHEIGHT: sharp on a laptop screen, still readable scaled
/// into a PR.
pub const DEFAULT_SIZE: &str = "1280x720";

/// The family name the embedded font is registered under.
pub const FONT: &str = "sans-serif";
pub const TITLE_SIZE: f64 = 30.0;
pub const SUBTITLE_SIZE: f64 = 19.0;
pub const AXIS_TITLE_SIZE: f64 = 22.0;
pub const LABEL_SIZE: f64 = 18.0;
pub const LEGEND_SIZE: f64 = 18.0;
/// Width of the legend panel on the right.
pub const LEGEND_WIDTH: u32 = 270;
pub const MARGIN: u32 = 24;

pub const TEXT: RGBColor = RGBColor(0x22, 0x22, 0x22);
pub const MUTED: RGBColor = RGBColor(0x66, 0x66, 0x66);
pub const GRID: RGBColor = RGBColor(0xe4, 0xe4, 0xe4);
pub const GRID_BOLD: RGBColor = RGBColor(0xc8, 0xc8, 0xc8);

/// Okabe–Ito: distinct for the colour-blind, and in greyscale print.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x00, 0x9E, 0x73), // green
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0xCC, 0x79, 0xA7), // purple
    RGBColor(0x56, 0xB4, 0xE9), // sky
    RGBColor(0x8C, 0x6D, 0x31), // brown
    RGBColor(0x33, 0x33, 0x33), // near-black
];

pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

static REGULAR: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

/// Registers the embedded font once; every chart calls it first.
pub fn register_fonts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The bytes are a known-good TTF compiled in; a failure would be a build problem.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, REGULAR);
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, BOLD);
    });
}

pub fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&TEXT)
}

pub fn bold(size: f64) -> TextStyle<'static> {
    (FONT, size, FontStyle::Bold).into_font().color(&TEXT)
}

/// How an entry is drawn in the legend.
#[derive(Clone, Copy)]
pub enum Mark {
    /// A line with a dot: a series over time.
    Line,
    /// A filled box: bars and timeline segments.
    Block,
}

/// Splits off the title band (title + subtitle) and returns the area under it.
pub fn title<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
) -> anyhow::Result<DrawingArea<DB, Shift>> {
    root.fill(&WHITE).map_err(pe)?;
    let band = (TITLE_SIZE + SUBTITLE_SIZE + 30.0) as u32;
    let (top, rest) = root.split_vertically(band);
    top.draw_text(title, &bold(TITLE_SIZE), (MARGIN as i32, 12)).map_err(pe)?;
    top.draw_text(subtitle, &font(SUBTITLE_SIZE).color(&MUTED), (MARGIN as i32, 14 + TITLE_SIZE as i32)).map_err(pe)?;
    Ok(rest)
}

/// Draws the title band and splits the area under it into the plot (left) and the legend
/// panel (right).
pub fn plot_and_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
) -> anyhow::Result<(DrawingArea<DB, Shift>, DrawingArea<DB, Shift>)> {
    let body = self::title(root, title, subtitle)?;
    Ok(body.split_horizontally(body.dim_in_pixel().0.saturating_sub(LEGEND_WIDTH)))
}

/// A chart on cartesian axes `X` × `Y`, as plotters builds it.
pub type CartesianChart<'a, DB, X, Y> = ChartContext<'a, DB, Cartesian2d<X, Y>>;

/// A cartesian chart on `area` over `x` × `y`, with the margin and axis-label room every chart
/// uses.
pub fn cartesian<'a, DB, X, Y>(
    area: &'a DrawingArea<DB, Shift>,
    x: X,
    y: Y,
) -> anyhow::Result<CartesianChart<'a, DB, X::CoordDescType, Y::CoordDescType>>
where
    DB: DrawingBackend,
    X: AsRangedCoord,
    Y: AsRangedCoord,
{
    ChartBuilder::on(area)
        .margin(MARGIN)
        .x_label_area_size(56)
        .y_label_area_size(78)
        .build_cartesian_2d(x, y)
        .map_err(pe)
}

/// Draws a chart's axes and grid in the shared look: label and axis-title fonts, a light grid,
/// muted axes. The caller sets what differs (descriptions, label counts and formats).
pub fn draw_axes<X, Y, DB>(mesh: &mut MeshStyle<'_, '_, X, Y, DB>) -> anyhow::Result<()>
where
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
    DB: DrawingBackend,
{
    mesh.label_style(font(LABEL_SIZE))
        .axis_desc_style(font(AXIS_TITLE_SIZE))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED)
        .draw()
        .map_err(pe)
}

/// Draws the legend as a list down the right-hand panel, with an optional heading.
pub fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    heading: &str,
    entries: &[(String, RGBColor, Mark)],
) -> anyhow::Result<()> {
    let x = 8;
    let mut y = 30;
    if !heading.is_empty() {
        area.draw_text(heading, &bold(LEGEND_SIZE), (x, y)).map_err(pe)?;
        y += (LEGEND_SIZE * 1.8) as i32;
    }
    for (label, c, mark) in entries {
        let mid = y + (LEGEND_SIZE / 2.0) as i32;
        match mark {
            Mark::Line => {
                area.draw(&PathElement::new(vec![(x, mid), (x + 28, mid)], c.stroke_width(3))).map_err(pe)?;
                area.draw(&Circle::new((x + 14, mid), 5, c.filled())).map_err(pe)?;
            }
            Mark::Block => {
                area.draw(&Rectangle::new([(x, mid - 8), (x + 28, mid + 8)], c.filled())).map_err(pe)?;
            }
        }
        let text = clip(label, 22);
        area.draw_text(&text, &font(LEGEND_SIZE), (x + 38, y)).map_err(pe)?;
        y += (LEGEND_SIZE * 1.7) as i32;
    }
    Ok(())
}

/// Shortens a label to `max` characters with an ellipsis.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

/// `s` with its first letter in upper case, for a chart title.
pub fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Axis numbers without trailing noise: 25, 2.5, 0.25.
pub fn axis_number(y: f64) -> String {
    if y.abs() >= 100.0 {
        return format!("{y:.0}");
    }
    let s = format!("{y:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A "nice" upper bound for an axis starting at zero.
pub fn nice_max(v: f64) -> f64 {
    if v.is_nan() || v <= 0.0 {
        return 1.0;
    }
    let v = v * 1.1;
    let mag = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * mag >= v {
            return step * mag;
        }
    }
    10.0 * mag
}

/// `v` rounded up to a whole number of "nice" ticks (about eight of them).
pub fn nice_ceil(v: f64) -> f64 {
    if v.is_nan() || v <= 0.0 {
        return 1.0;
    }
    let raw = v / 8.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].into_iter().map(|s| s * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    (v / step).ceil() * step
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_bounds() {
        assert_eq!(nice_max(83.0), 100.0);
        assert_eq!(nice_max(190.0), 250.0);
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_ceil(323.0), 350.0);
        assert_eq!(nice_ceil(61.0), 70.0);
        assert_eq!(clip("abcdef", 4), "abc…");
    }

    #[test]
    fn axis_numbers_are_short() {
        let f = axis_number;
        assert_eq!(
            [f(0.8), f(0.8000000001), f(1.0), f(2.5), f(0.25), f(250.0)],
            ["0.8", "0.8", "1", "2.5", "0.25", "250"]
        );
        assert_eq!(capitalised("tests passed (%)"), "Tests passed (%)");
    }
}
