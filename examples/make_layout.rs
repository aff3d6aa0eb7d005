//! Builds a small OCI image layout with the project's own layout builder: one linux/amd64
//! image of two gzip layers, listed in `index.json` under NAME. The demo imports it.
//!
//! ```sh
//! cargo run --release --example make_layout -- DIR NAME
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use oci_store::stores::oci::layout_builder::LayoutBuilder;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let [directory, name] = arguments.as_slice() else {
        eprintln!("usage: make_layout DIR NAME");
        return ExitCode::from(2);
    };
    let directory = PathBuf::from(directory);
    match LayoutBuilder::simple_image(&directory, name) {
        Ok(manifest) => {
            println!(
                "wrote {} holding ref {name}: {} ({} byte manifest)",
                directory.display(),
                manifest.digest(),
                manifest.size()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("make_layout: writing {}: {error}", directory.display());
            ExitCode::FAILURE
        }
    }
}
