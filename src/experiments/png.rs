//! PNG copies of the SVG figures, rendered with the machine's fonts (the
//! first of DejaVu Sans, Liberation Sans, Arial, Helvetica found, else any
//! sans-serif face). Without any font the PNG has no text, and a warning says so.

use crate::error::{Error, Result};
use resvg::{tiny_skia, usvg};
use std::path::Path;
use std::sync::{Arc, OnceLock};

fn fonts() -> Arc<usvg::fontdb::Database> {
    static DB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_system_fonts();
        let families: Vec<String> = db
            .faces()
            .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
            .collect();
        let pick = ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"]
            .iter()
            .find(|want| families.iter().any(|f| f == *want))
            .map(|s| s.to_string())
            .or_else(|| {
                families
                    .iter()
                    .find(|f| f.to_lowercase().contains("sans"))
                    .cloned()
            })
            .or_else(|| families.first().cloned());
        match pick {
            Some(f) => db.set_sans_serif_family(f),
            None => log::warn!("no font found: the PNG figures have no text"),
        }
        Arc::new(db)
    })
    .clone()
}

/// Renders the SVG at `svg` to a PNG beside it (same name, `.png`), written atomically.
pub fn render(svg: &Path) -> Result<()> {
    let data = std::fs::read(svg).map_err(|e| Error::file(svg, e))?;
    let opt = usvg::Options {
        fontdb: fonts(),
        font_family: "sans-serif".into(),
        ..Default::default()
    };
    let tree = usvg::Tree::from_data(&data, &opt)
        .map_err(|e| Error::file(svg, format!("cannot read the SVG back: {e}")))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| Error::file(svg, "empty figure"))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    let png = pixmap
        .encode_png()
        .map_err(|e| Error::file(svg, format!("PNG encoding: {e}")))?;
    crate::atomic::write_atomic(&svg.with_extension("png"), &png)
}
