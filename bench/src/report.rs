//! Results files: JSON, a Markdown table, and small hand-written SVG plots.

use std::path::PathBuf;

pub const ATTRIBUTION: &str = "Traces: automerge-paper by Martin Kleppmann (josephg/editing-traces, from automerge/automerge-perf), \
licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).";

pub fn results_dir() -> PathBuf {
    let d = std::env::var_os("YKEEP_BENCH_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::servers::repo_root().join("bench/results"));
    let _ = std::fs::create_dir_all(&d);
    d
}

pub fn write(name: &str, ext: &str, content: &str) {
    let path = results_dir().join(format!("{name}.{ext}"));
    std::fs::write(&path, content).expect("write results");
    eprintln!("wrote {}", path.display());
}

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cores} cores, {cpu}")
}

pub fn now_utc() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// One line series on a plot.
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<(f64, f64)>,
}

/// A small line plot (linear axes, from 0) as an SVG document.
/// Width, height and left/right/top/bottom margins of every plot.
const FRAME: (f64, f64, f64, f64, f64, f64) = (560.0, 340.0, 70.0, 150.0, 40.0, 50.0);

pub fn line_plot(title: &str, xlabel: &str, ylabel: &str, series: &[Series]) -> String {
    let (w, h, l, r, t, b) = FRAME;
    let xmax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(0.0, f64::max)
        .max(1e-9);
    let ymax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.1;
    let px = |x: f64| l + (w - l - r) * x / xmax;
    let py = |y: f64| h - b - (h - t - b) * y / ymax;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"20\" font-size=\"13\" text-anchor=\"middle\">{title}</text>\n",
        (w - r + l) / 2.0
    );
    s += &format!(
        "<line x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n",
        h - b,
        w - r,
        h - b
    );
    s += &format!(
        "<line x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{}\" stroke=\"black\"/>\n",
        h - b
    );
    for i in 0..=4 {
        let yv = ymax * i as f64 / 4.0;
        let xv = xmax * i as f64 / 4.0;
        s += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
            l - 5.0,
            py(yv) + 4.0,
            fmt_num(yv)
        );
        s += &format!(
            "<line x1=\"{l}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#ddd\"/>\n",
            py(yv),
            w - r
        );
        s += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            px(xv),
            h - b + 15.0,
            fmt_num(xv)
        );
    }
    s += &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{xlabel}</text>\n",
        (w - r + l) / 2.0,
        h - 12.0
    );
    s += &format!(
        "<text x=\"14\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {0})\">{ylabel}</text>\n",
        (h - b + t) / 2.0
    );
    for se in series {
        let pts: Vec<String> = se
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        s += &format!(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n",
            se.color,
            pts.join(" ")
        );
        for &(x, y) in &se.points {
            s += &format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"/>\n",
                px(x),
                py(y),
                se.color
            );
        }
    }
    finish(s, series, 3.0)
}

/// Grouped bars: one group per category, one bar per series (values as `(category, value)`).
pub fn bar_plot(title: &str, ylabel: &str, cats: &[String], series: &[Series]) -> String {
    let (w, h, l, r, t, b) = FRAME;
    let ymax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.1;
    let py = |y: f64| h - b - (h - t - b) * y / ymax;
    let gw = (w - l - r) / cats.len().max(1) as f64;
    let bw = gw * 0.8 / series.len().max(1) as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"20\" font-size=\"13\" text-anchor=\"middle\">{title}</text>\n",
        (w - r + l) / 2.0
    );
    s += &format!(
        "<line x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n",
        h - b,
        w - r,
        h - b
    );
    for i in 0..=4 {
        let yv = ymax * i as f64 / 4.0;
        s += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
            l - 5.0,
            py(yv) + 4.0,
            fmt_num(yv)
        );
        s += &format!(
            "<line x1=\"{l}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#ddd\"/>\n",
            py(yv),
            w - r
        );
    }
    for (ci, c) in cats.iter().enumerate() {
        let gx = l + gw * ci as f64 + gw * 0.1;
        s += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{c}</text>\n",
            l + gw * (ci as f64 + 0.5),
            h - b + 15.0
        );
        for (k, se) in series.iter().enumerate() {
            if let Some(&(_, v)) = se.points.get(ci) {
                s += &format!(
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>\n",
                    gx + bw * k as f64,
                    py(v),
                    bw * 0.95,
                    (h - b - py(v)).max(0.0),
                    se.color
                );
            }
        }
    }
    s += &format!(
        "<text x=\"14\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {0})\">{ylabel}</text>\n",
        (h - b + t) / 2.0
    );
    finish(s, series, 8.0)
}

/// The legend at the right (one swatch `swatch` px high per series), the trace's attribution
/// and the end of the SVG: shared by both plots, which use the same frame.
fn finish(mut s: String, series: &[Series], swatch: f64) -> String {
    let (w, h, l, r, t, _) = FRAME;
    for (k, se) in series.iter().enumerate() {
        let ly = t + 14.0 * k as f64;
        s += &format!(
            "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"{swatch}\" fill=\"{}\"/>\n",
            w - r + 10.0,
            ly + 5.5 - swatch / 2.0,
            se.color
        );
        s += &format!(
            "<text x=\"{}\" y=\"{}\">{}</text>\n",
            w - r + 26.0,
            ly + 9.0,
            se.name
        );
    }
    s += &format!(
        "<text x=\"{l}\" y=\"{}\" font-size=\"8\" fill=\"#666\">Data: automerge-paper trace, M. Kleppmann, CC BY 4.0</text>\n",
        h - 1.0
    );
    s += "</svg>\n";
    s
}

pub fn fmt_num(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Replaces the section `<!-- results:NAME -->` ... `<!-- /results:NAME -->` of bench/README.md
/// with `body` (so the README always shows the latest table the command wrote).
pub fn update_readme(name: &str, body: &str) {
    let path = crate::servers::repo_root().join("bench/README.md");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let open = format!("<!-- results:{name} -->");
    let close = format!("<!-- /results:{name} -->");
    let (Some(a), Some(b)) = (text.find(&open), text.find(&close)) else {
        return;
    };
    if b < a {
        return;
    }
    // Demote the table's own title to a line of bold text inside the README.
    let body = body
        .lines()
        .map(
            |l| match l.strip_prefix("# ").or_else(|| l.strip_prefix("## ")) {
                Some(t) => format!("**{t}**"),
                None => l.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("\n");
    let new = format!("{}{open}\n{body}\n{}", &text[..a], &text[b..]);
    if std::fs::write(&path, new).is_ok() {
        eprintln!("updated {} ({name})", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_plots_carry_a_legend_entry_per_series_and_the_attribution() {
        let series = [
            Series {
                name: "alpha".into(),
                color: "#111111",
                points: vec![(1.0, 2.0), (2.0, 4.0)],
            },
            Series {
                name: "beta".into(),
                color: "#222222",
                points: vec![(1.0, 1.0), (2.0, 3.0)],
            },
        ];
        let cats = ["1".to_string(), "2".to_string()];
        for svg in [
            line_plot("t", "x", "y", &series),
            bar_plot("t", "y", &cats, &series),
        ] {
            assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
            for name in ["alpha", "beta"] {
                assert_eq!(svg.matches(&format!(">{name}</text>")).count(), 1, "{svg}");
            }
            assert!(svg.contains("CC BY 4.0"));
        }
    }
}
